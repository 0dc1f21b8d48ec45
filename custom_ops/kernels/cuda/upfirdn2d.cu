// upfirdn2d on the GPU: the direct kernel, one thread per output element. NHWC puts the channel
// index fastest, so a warp reads and writes consecutive channels of one pixel (coalesced), and all
// its threads walk the same taps. The arithmetic is upfirdn2d_pixel (upfirdn2d.h), shared with
// the host emulation that CI runs.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "api.h"

namespace stylegan2 {

constexpr int kUpfirdn2dBlock = 256;

template <typename T>
__global__ void __launch_bounds__(kUpfirdn2dBlock)
    upfirdn2d_direct(sg2_upfirdn2d_args a, int out_h, int out_w, int total, const T* __restrict__ x,
                     const float* __restrict__ f, T* __restrict__ y) {
  const int64_t index = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= total) return;
  y[index] = static_cast<T>(upfirdn2d_pixel<T>(a, out_h, out_w, x, f, static_cast<int>(index)));
}

template <typename T>
static int launch_upfirdn2d(const sg2_upfirdn2d_args& a, const void* x, const float* f, void* y,
                            cudaStream_t stream) {
  const int out_h = static_cast<int>(upfirdn2d_out_h(a)), out_w = static_cast<int>(upfirdn2d_out_w(a));
  const int total = a.n * out_h * out_w * a.c;
  if (total == 0) return SG2_OK;
  const unsigned blocks = static_cast<unsigned>((int64_t(total) + kUpfirdn2dBlock - 1) / kUpfirdn2dBlock);
  upfirdn2d_direct<T><<<blocks, kUpfirdn2dBlock, 0, stream>>>(a, out_h, out_w, total, static_cast<const T*>(x), f,
                                                              static_cast<T*>(y));
  return static_cast<int>(cudaGetLastError());
}

}  // namespace stylegan2

extern "C" int sg2_upfirdn2d(const sg2_upfirdn2d_args* args, int dtype, const void* x, const float* f, void* y,
                             cudaStream_t stream) {
  using namespace stylegan2;
  const int status = upfirdn2d_check(args, x, f, y);
  if (status != SG2_OK) return status;
  switch (dtype) {
    case SG2_FLOAT32: return launch_upfirdn2d<float>(*args, x, f, y, stream);
    case SG2_FLOAT16: return launch_upfirdn2d<__half>(*args, x, f, y, stream);
    case SG2_BFLOAT16: return launch_upfirdn2d<__nv_bfloat16>(*args, x, f, y, stream);
    case SG2_FLOAT64: return launch_upfirdn2d<double>(*args, x, f, y, stream);
    default: return SG2_ERROR_DTYPE;
  }
}
