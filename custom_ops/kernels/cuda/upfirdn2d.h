// upfirdn2d for NHWC tensors: the arguments of the C API and the per-thread arithmetic of the
// direct CUDA kernel (one thread per output element), written once for the device and the host.
//
// Definition (the same as custom_ops/upfirdn2d.py): upsample by inserting up - 1 zeros after every
// pixel, pad (negative: crop), convolve with the 2-D FIR filter f (correlate when flip is set),
// keep every down-th pixel, multiply by gain. Instead of building the zero-inserted image, an
// output pixel visits only the taps that land on real input pixels: along an axis those are every
// up-th tap, starting at a phase fixed by the output position.
#ifndef STYLEGAN2_CUDA_UPFIRDN2D_H_
#define STYLEGAN2_CUDA_UPFIRDN2D_H_

#include "common.h"

// x: [n, in_h, in_w, c] (NHWC, contiguous); f: [fh, fw] float32, row-major; y: [n, out_h, out_w, c].
// Plain C layout: custom_ops/cuda_selftest.py mirrors it with ctypes.
struct sg2_upfirdn2d_args {
  int32_t n, in_h, in_w, c;
  int32_t fh, fw;
  int32_t upx, upy, downx, downy;
  int32_t padx0, padx1, pady0, pady1;
  int32_t flip;  // 0: convolution, 1: correlation
  float gain;
};

namespace stylegan2 {

// Output extent along one axis (< 1: no output).
SG2_HD int64_t upfirdn2d_out_size(int64_t in, int up, int pad0, int pad1, int taps, int down) {
  const int64_t span = in * up + pad0 + pad1 - taps;
  return span < 0 ? 0 : span / down + 1;
}

SG2_HD int64_t upfirdn2d_out_h(const sg2_upfirdn2d_args& a) {
  return upfirdn2d_out_size(a.in_h, a.upy, a.pady0, a.pady1, a.fh, a.downy);
}

SG2_HD int64_t upfirdn2d_out_w(const sg2_upfirdn2d_args& a) {
  return upfirdn2d_out_size(a.in_w, a.upx, a.padx0, a.padx1, a.fw, a.downx);
}

// SG2_OK when the kernels can run `a`, else the reason (host code: the C API checks first).
inline int upfirdn2d_check(const sg2_upfirdn2d_args& a) {
  if (a.n < 0 || a.in_h < 1 || a.in_w < 1 || a.c < 0 || a.fh < 1 || a.fw < 1) return SG2_ERROR_ARGUMENT;
  if (a.upx < 1 || a.upy < 1 || a.downx < 1 || a.downy < 1) return SG2_ERROR_ARGUMENT;
  const int64_t out_h = upfirdn2d_out_h(a), out_w = upfirdn2d_out_w(a);
  if (out_h < 1 || out_w < 1) return SG2_ERROR_ARGUMENT;
  const int64_t limit = INT32_MAX;
  // Every index the kernel forms, padded positions included, stays below 2^31.
  const int64_t pad_y = a.pady0 < 0 ? -int64_t(a.pady0) : a.pady0, pad_x = a.padx0 < 0 ? -int64_t(a.padx0) : a.padx0;
  const int64_t span_y = (out_h - 1) * a.downy + a.fh + int64_t(a.in_h) * a.upy + pad_y;
  const int64_t span_x = (out_w - 1) * a.downx + a.fw + int64_t(a.in_w) * a.upx + pad_x;
  if (int64_t(a.n) * a.in_h * a.in_w * a.c > limit || int64_t(a.n) * out_h * out_w * a.c > limit ||
      int64_t(a.fh) * a.fw > limit || span_y > limit || span_x > limit) {
    return SG2_ERROR_TOO_LARGE;
  }
  return SG2_OK;
}

// What the C API's upfirdn2d functions check before they compute: SG2_OK when the kernels can run
// `a` on these buffers, else the reason. Null buffers are valid only for an empty output.
inline int upfirdn2d_check(const sg2_upfirdn2d_args* a, const void* x, const float* f, const void* y) {
  if (!a) return SG2_ERROR_ARGUMENT;
  const int status = upfirdn2d_check(*a);
  if (status != SG2_OK) return status;
  if (x && f && y) return SG2_OK;
  return a->n == 0 || a->c == 0 ? SG2_OK : SG2_ERROR_ARGUMENT;
}

// The input pixels and filter taps that output position `o` reads along one axis: input positions
// in0 .. in0 + count - 1, weighted by taps tap0, tap0 + step, ... of that filter axis.
struct AxisTaps {
  int in0, count, tap0, step;
};

SG2_HD AxisTaps upfirdn2d_axis(int o, int up, int down, int pad0, int taps, int in_size, bool flip) {
  // Output o covers the upsampled positions u = m .. m + taps - 1 with m = o * down - pad0; the
  // real pixels among them are u = up * i, 0 <= i < in_size. Convolution weighs position m + k
  // with tap taps - 1 - k, correlation with tap k.
  const int m = o * down - pad0;
  const int first = max_int(-floor_div(-m, up), 0);                  // ceil(m / up), clipped
  const int last = min_int(floor_div(m + taps - 1, up), in_size - 1);
  AxisTaps t;
  t.in0 = first;
  t.count = max_int(last - first + 1, 0);
  const int k0 = first * up - m;
  t.tap0 = flip ? k0 : taps - 1 - k0;
  t.step = flip ? up : -up;
  return t;
}

// Output element `index` (flat NHWC index into y), before conversion to the storage type.
template <typename T>
SG2_HD typename Accumulator<T>::type upfirdn2d_pixel(const sg2_upfirdn2d_args& a, int out_h, int out_w,
                                                     const T* x, const float* f, int index) {
  typedef typename Accumulator<T>::type A;
  const int ch = index % a.c;
  int rest = index / a.c;
  const int ox = rest % out_w;
  rest /= out_w;
  const int oy = rest % out_h;
  const int n = rest / out_h;
  const AxisTaps ty = upfirdn2d_axis(oy, a.upy, a.downy, a.pady0, a.fh, a.in_h, a.flip != 0);
  const AxisTaps tx = upfirdn2d_axis(ox, a.upx, a.downx, a.padx0, a.fw, a.in_w, a.flip != 0);
  A acc = A(0);
  for (int j = 0; j < ty.count; ++j) {
    const T* row = x + ((n * a.in_h + ty.in0 + j) * a.in_w + tx.in0) * a.c + ch;
    const float* taps = f + (ty.tap0 + j * ty.step) * a.fw + tx.tap0;
    for (int i = 0; i < tx.count; ++i) {
      acc += static_cast<A>(row[i * a.c]) * static_cast<A>(taps[i * tx.step]);
    }
  }
  return acc * static_cast<A>(a.gain);
}

}  // namespace stylegan2

#endif  // STYLEGAN2_CUDA_UPFIRDN2D_H_
