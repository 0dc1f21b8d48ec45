// bias_act on the GPU: one thread per element, the activation a template parameter (one kernel per
// activation and element type), the mode a uniform branch. The arithmetic is bias_act_element
// (bias_act.h), shared with the CPU kernels and the host emulation that CI runs.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "api.h"

namespace stylegan2 {

constexpr int kBiasActBlock = 256;

template <typename T, int Act>
__global__ void __launch_bounds__(kBiasActBlock)
    bias_act_kernel(sg2_bias_act_args p, const T* __restrict__ x, const T* __restrict__ b,
                    const T* __restrict__ xref, const T* __restrict__ yref, const T* __restrict__ dy,
                    T* __restrict__ y) {
  const int64_t index = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= p.size) return;
  y[index] = static_cast<T>(bias_act_element<Act, T>(p, x, b, xref, yref, dy, static_cast<int>(index)));
}

template <typename T>
static int launch_bias_act(const sg2_bias_act_args& p, const void* x, const void* b, const void* xref,
                           const void* yref, const void* dy, void* y, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((int64_t(p.size) + kBiasActBlock - 1) / kBiasActBlock);
  return dispatch_act(p.act, [&](auto act) {
    bias_act_kernel<T, decltype(act)::value><<<blocks, kBiasActBlock, 0, stream>>>(
        p, static_cast<const T*>(x), static_cast<const T*>(b), static_cast<const T*>(xref),
        static_cast<const T*>(yref), static_cast<const T*>(dy), static_cast<T*>(y));
    return static_cast<int>(cudaGetLastError());
  });
}

}  // namespace stylegan2

extern "C" int sg2_bias_act(const sg2_bias_act_args* args, int dtype, const void* x, const void* b,
                            const void* xref, const void* yref, const void* dy, void* y, cudaStream_t stream) {
  using namespace stylegan2;
  if (!args) return SG2_ERROR_ARGUMENT;
  const int status = bias_act_check(*args, x, b, xref, yref, dy, y);
  if (status != SG2_OK || args->size == 0) return status;
  switch (dtype) {
    case SG2_FLOAT32: return launch_bias_act<float>(*args, x, b, xref, yref, dy, y, stream);
    case SG2_FLOAT16: return launch_bias_act<__half>(*args, x, b, xref, yref, dy, y, stream);
    case SG2_BFLOAT16: return launch_bias_act<__nv_bfloat16>(*args, x, b, xref, yref, dy, y, stream);
    case SG2_FLOAT64: return launch_bias_act<double>(*args, x, b, xref, yref, dy, y, stream);
    default: return SG2_ERROR_DTYPE;
  }
}
