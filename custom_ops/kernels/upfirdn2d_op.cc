// upfirdn2d for NHWC tensors, CPU kernel. Same definition as the pure-TF reference in
// custom_ops/upfirdn2d.py: zero-insertion upsampling, padding (negative = crop), FIR filtering,
// downsampling. Instead of materialising the zero-inserted, padded image, each output pixel visits
// only the filter taps that land on real input pixels, and the channel loop is innermost
// (contiguous in NHWC). The gradient is another upfirdn2d call (set up in Python), so gradients of
// any order need no further kernel.

#include <cstdint>
#include <type_traits>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace stylegan2 {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;

struct ResampleParams {
  int upx, upy, downx, downy, padx0, padx1, pady0, pady1;
  bool flip;
  float gain;
};

static ::tensorflow::Status ParseResample(OpKernelConstruction* ctx, ResampleParams* p) {
  TF_RETURN_IF_ERROR(ctx->GetAttr("upx", &p->upx));
  TF_RETURN_IF_ERROR(ctx->GetAttr("upy", &p->upy));
  TF_RETURN_IF_ERROR(ctx->GetAttr("downx", &p->downx));
  TF_RETURN_IF_ERROR(ctx->GetAttr("downy", &p->downy));
  TF_RETURN_IF_ERROR(ctx->GetAttr("padx0", &p->padx0));
  TF_RETURN_IF_ERROR(ctx->GetAttr("padx1", &p->padx1));
  TF_RETURN_IF_ERROR(ctx->GetAttr("pady0", &p->pady0));
  TF_RETURN_IF_ERROR(ctx->GetAttr("pady1", &p->pady1));
  TF_RETURN_IF_ERROR(ctx->GetAttr("flip_filter", &p->flip));
  TF_RETURN_IF_ERROR(ctx->GetAttr("gain", &p->gain));
  if (p->upx < 1 || p->upy < 1 || p->downx < 1 || p->downy < 1) {
    return InvalidArgument("up and down factors must be >= 1");
  }
  return ::tensorflow::OkStatus();
}

// Output extent along one axis, or <= 0 when nothing remains.
static int64_t OutSize(int64_t in, int up, int pad0, int pad1, int taps, int down) {
  const int64_t span = in * up + pad0 + pad1 - taps;
  return span < 0 ? 0 : span / down + 1;
}

template <typename T>
using Acc = typename std::conditional<std::is_same<T, double>::value, double, float>::type;

template <typename T>
class Upfirdn2dOp : public OpKernel {
 public:
  explicit Upfirdn2dOp(OpKernelConstruction* ctx) : OpKernel(ctx) { OP_REQUIRES_OK(ctx, ParseResample(ctx, &p_)); }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& f = ctx->input(1);
    OP_REQUIRES(ctx, x.dims() == 4, InvalidArgument("x must be NHWC, got rank ", x.dims()));
    OP_REQUIRES(ctx, f.dims() == 2 && f.NumElements() > 0, InvalidArgument("f must be a non-empty 2-D filter"));
    const int64_t n = x.dim_size(0), in_h = x.dim_size(1), in_w = x.dim_size(2), c = x.dim_size(3);
    const int fh = static_cast<int>(f.dim_size(0)), fw = static_cast<int>(f.dim_size(1));
    const ResampleParams p = p_;
    const int64_t out_h = OutSize(in_h, p.upy, p.pady0, p.pady1, fh, p.downy);
    const int64_t out_w = OutSize(in_w, p.upx, p.padx0, p.padx1, fw, p.downx);
    OP_REQUIRES(ctx, out_h > 0 && out_w > 0, InvalidArgument("upfirdn2d: the padded input is smaller than the filter"));

    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({n, out_h, out_w, c}), &y));
    if (y->NumElements() == 0) return;

    // Convolution = correlation with the flipped filter; fold the gain into the taps.
    using A = Acc<T>;
    std::vector<A> taps(static_cast<size_t>(fh) * fw);
    const float* fp = f.flat<float>().data();
    for (int ky = 0; ky < fh; ++ky) {
      for (int kx = 0; kx < fw; ++kx) {
        const int sy = p.flip ? ky : fh - 1 - ky, sx = p.flip ? kx : fw - 1 - kx;
        taps[ky * fw + kx] = static_cast<A>(fp[sy * fw + sx]) * static_cast<A>(p.gain);
      }
    }

    const T* xp = x.flat<T>().data();
    T* yp = y->flat<T>().data();
    const int64_t up_h = in_h * p.upy, up_w = in_w * p.upx;
    auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
    const int64_t cost = out_w * c * (fh * fw) / (p.upx * p.upy) + out_w * c;
    ::tensorflow::Shard(workers->num_threads, workers->workers, n * out_h, cost, [&](int64_t begin, int64_t end) {
      std::vector<A> acc(c);
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / out_h, oy = row % out_h;
        for (int64_t ox = 0; ox < out_w; ++ox) {
          std::fill(acc.begin(), acc.end(), A(0));
          for (int ky = 0; ky < fh; ++ky) {
            const int64_t uy = oy * p.downy + ky - p.pady0;  // row in the upsampled image
            if (uy < 0 || uy >= up_h || uy % p.upy != 0) continue;
            const int64_t iy = uy / p.upy;
            for (int kx = 0; kx < fw; ++kx) {
              const int64_t ux = ox * p.downx + kx - p.padx0;
              if (ux < 0 || ux >= up_w || ux % p.upx != 0) continue;
              const A w = taps[ky * fw + kx];
              const T* src = xp + ((b * in_h + iy) * in_w + ux / p.upx) * c;
              for (int64_t ch = 0; ch < c; ++ch) acc[ch] += static_cast<A>(src[ch]) * w;
            }
          }
          T* dst = yp + ((b * out_h + oy) * out_w + ox) * c;
          for (int64_t ch = 0; ch < c; ++ch) dst[ch] = static_cast<T>(acc[ch]);
        }
      }
    });
  }

 private:
  ResampleParams p_;
};

}  // namespace stylegan2

REGISTER_OP("StyleGAN2Upfirdn2d")
    .Input("x: T")
    .Input("f: float")
    .Output("y: T")
    .Attr("T: {half, bfloat16, float, double}")
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
        return c->MakeDim(stylegan2::OutSize(in, up, p0, p1, static_cast<int>(taps), down));
      };
      c->set_output(0, c->MakeShape({c->Dim(x, 0), extent(1, 0, upy, pady0, pady1, downy),
                                     extent(2, 1, upx, padx0, padx1, downx), c->Dim(x, 3)}));
      return ::tensorflow::OkStatus();
    })
    .Doc("Upsample (zero insertion), pad, FIR-filter and downsample NHWC images.");

#define REGISTER_UPFIRDN2D_CPU(T)                                                                  \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2Upfirdn2d").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
                          stylegan2::Upfirdn2dOp<T>);

REGISTER_UPFIRDN2D_CPU(Eigen::half);
REGISTER_UPFIRDN2D_CPU(Eigen::bfloat16);
REGISTER_UPFIRDN2D_CPU(float);
REGISTER_UPFIRDN2D_CPU(double);
