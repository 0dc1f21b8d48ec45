// The CUDA kernels' per-thread code run on the host: the same functions (upfirdn2d_pixel,
// bias_act_element) evaluated for every index of the launch grid in turn, behind functions with
// the C API's arguments. Built with a plain C++ compiler, no CUDA needed, so CI checks the index
// arithmetic of the GPU path against numpy on every run (tests/custom_ops/test_cuda_host_emulation.py,
// python -m custom_ops.cuda_selftest --host). float16 is the compiler's _Float16 (IEEE binary16, as
// CUDA's __half); bfloat16 exists only on the device.

#include "bias_act.h"
#include "upfirdn2d.h"

namespace stylegan2 {

template <typename T>
static int host_upfirdn2d(const sg2_upfirdn2d_args& a, const void* x, const float* f, void* y) {
  const int out_h = static_cast<int>(upfirdn2d_out_h(a)), out_w = static_cast<int>(upfirdn2d_out_w(a));
  const int total = a.n * out_h * out_w * a.c;
  for (int i = 0; i < total; ++i) {
    static_cast<T*>(y)[i] = static_cast<T>(upfirdn2d_pixel<T>(a, out_h, out_w, static_cast<const T*>(x), f, i));
  }
  return SG2_OK;
}

template <typename T>
static int host_bias_act(const sg2_bias_act_args& p, const void* x, const void* b, const void* xref,
                         const void* yref, const void* dy, void* y) {
  return dispatch_act(p.act, [&](auto act) {
    for (int i = 0; i < p.size; ++i) {
      static_cast<T*>(y)[i] = static_cast<T>(bias_act_element<decltype(act)::value, T>(
          p, static_cast<const T*>(x), static_cast<const T*>(b), static_cast<const T*>(xref),
          static_cast<const T*>(yref), static_cast<const T*>(dy), i));
    }
    return SG2_OK;
  });
}

}  // namespace stylegan2

extern "C" int sg2_host_upfirdn2d(const sg2_upfirdn2d_args* args, int dtype, const void* x, const float* f,
                                  void* y) {
  using namespace stylegan2;
  const int status = upfirdn2d_check(args, x, f, y);
  if (status != SG2_OK) return status;
  switch (dtype) {
    case SG2_FLOAT32: return host_upfirdn2d<float>(*args, x, f, y);
    case SG2_FLOAT16: return host_upfirdn2d<_Float16>(*args, x, f, y);
    case SG2_FLOAT64: return host_upfirdn2d<double>(*args, x, f, y);
    default: return SG2_ERROR_DTYPE;
  }
}

extern "C" int sg2_host_bias_act(const sg2_bias_act_args* args, int dtype, const void* x, const void* b,
                                 const void* xref, const void* yref, const void* dy, void* y) {
  using namespace stylegan2;
  if (!args) return SG2_ERROR_ARGUMENT;
  const int status = bias_act_check(*args, x, b, xref, yref, dy, y);
  if (status != SG2_OK || args->size == 0) return status;
  switch (dtype) {
    case SG2_FLOAT32: return host_bias_act<float>(*args, x, b, xref, yref, dy, y);
    case SG2_FLOAT16: return host_bias_act<_Float16>(*args, x, b, xref, yref, dy, y);
    case SG2_FLOAT64: return host_bias_act<double>(*args, x, b, xref, yref, dy, y);
    default: return SG2_ERROR_DTYPE;
  }
}
