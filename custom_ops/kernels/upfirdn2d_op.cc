// upfirdn2d for NHWC tensors: the op (one library serves CPU and GPU) and its CPU kernel. Same
// definition as the pure-TF reference in custom_ops/upfirdn2d.py. The CPU kernel walks the taps
// that land on real input pixels with upfirdn2d_axis (cuda/upfirdn2d.h), the arithmetic of the GPU
// kernel, and keeps the channel loop innermost (contiguous in NHWC). The gradient is another
// upfirdn2d call (set up in Python), so gradients of any order need no further kernel.

#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "upfirdn2d_op.h"

REGISTER_OP("StyleGAN2Upfirdn2d")
    .Input("x: T")
    .Input("f: float")
    .Output("y: T")
    .Attr(STYLEGAN2_TYPE_ATTR)
    .Attr("upx: int = 1")
    .Attr("upy: int = 1")
    .Attr("downx: int = 1")
    .Attr("downy: int = 1")
    .Attr("padx0: int = 0")
    .Attr("padx1: int = 0")
    .Attr("pady0: int = 0")
    .Attr("pady1: int = 0")
    .Attr("flip_filter: bool = false")
    .Attr("gain: float = 1.0")
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      ::tensorflow::shape_inference::ShapeHandle x, f;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &f));
      int upx, upy, downx, downy, padx0, padx1, pady0, pady1;
      TF_RETURN_IF_ERROR(c->GetAttr("upx", &upx));
      TF_RETURN_IF_ERROR(c->GetAttr("upy", &upy));
      TF_RETURN_IF_ERROR(c->GetAttr("downx", &downx));
      TF_RETURN_IF_ERROR(c->GetAttr("downy", &downy));
      TF_RETURN_IF_ERROR(c->GetAttr("padx0", &padx0));
      TF_RETURN_IF_ERROR(c->GetAttr("padx1", &padx1));
      TF_RETURN_IF_ERROR(c->GetAttr("pady0", &pady0));
      TF_RETURN_IF_ERROR(c->GetAttr("pady1", &pady1));
      auto extent = [&](int in_dim, int f_dim, int up, int p0, int p1, int down) {
        const auto in = c->Value(c->Dim(x, in_dim)), taps = c->Value(c->Dim(f, f_dim));
        if (in < 0 || taps < 0) return c->UnknownDim();
        return c->MakeDim(stylegan2::upfirdn2d_out_size(in, up, p0, p1, static_cast<int>(taps), down));
      };
      c->set_output(0, c->MakeShape({c->Dim(x, 0), extent(1, 0, upy, pady0, pady1, downy),
                                     extent(2, 1, upx, padx0, padx1, downx), c->Dim(x, 3)}));
      return absl::OkStatus();
    })
    .Doc("Upsample (zero insertion), pad, FIR-filter and downsample NHWC images.");

namespace stylegan2 {

template <typename T>
void upfirdn2d_cpu(::tensorflow::OpKernelContext* ctx, const sg2_upfirdn2d_args& a, const ::tensorflow::Tensor& x,
                   const ::tensorflow::Tensor& f, ::tensorflow::Tensor* y) {
  typedef typename Accumulator<T>::type A;
  const int out_h = static_cast<int>(y->dim_size(1)), out_w = static_cast<int>(y->dim_size(2)), c = a.c;
  // The gain folded into the taps once.
  std::vector<A> taps(static_cast<size_t>(a.fh) * a.fw);
  const float* fp = f.flat<float>().data();
  for (size_t i = 0; i < taps.size(); ++i) taps[i] = static_cast<A>(fp[i]) * static_cast<A>(a.gain);
  const T* xp = x.flat<T>().data();
  T* yp = y->flat<T>().data();
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
  const int64_t cost = int64_t(out_w) * c * (a.fh * a.fw) / (a.upx * a.upy) + int64_t(out_w) * c;
  ::tensorflow::Shard(workers->num_threads, workers->workers, int64_t(a.n) * out_h, cost,
                      [&](int64_t begin, int64_t end) {
    std::vector<A> acc(c);
    for (int64_t row = begin; row < end; ++row) {
      const int n = static_cast<int>(row / out_h), oy = static_cast<int>(row % out_h);
      const AxisTaps ty = upfirdn2d_axis(oy, a.upy, a.downy, a.pady0, a.fh, a.in_h, a.flip != 0);
      for (int ox = 0; ox < out_w; ++ox) {
        const AxisTaps tx = upfirdn2d_axis(ox, a.upx, a.downx, a.padx0, a.fw, a.in_w, a.flip != 0);
        std::fill(acc.begin(), acc.end(), A(0));
        for (int j = 0; j < ty.count; ++j) {
          const A* w = taps.data() + (ty.tap0 + j * ty.step) * a.fw + tx.tap0;
          const T* src = xp + ((int64_t(n) * a.in_h + ty.in0 + j) * a.in_w + tx.in0) * c;
          for (int i = 0; i < tx.count; ++i, src += c) {
            const A wi = w[i * tx.step];
            for (int ch = 0; ch < c; ++ch) acc[ch] += static_cast<A>(src[ch]) * wi;
          }
        }
        T* dst = yp + ((int64_t(n) * out_h + oy) * out_w + ox) * c;
        for (int ch = 0; ch < c; ++ch) dst[ch] = static_cast<T>(acc[ch]);
      }
    }
  });
}

}  // namespace stylegan2

STYLEGAN2_REGISTER_FOR_EACH_TYPE(STYLEGAN2_REGISTER_UPFIRDN2D, ::tensorflow::DEVICE_CPU, stylegan2::upfirdn2d_cpu)
