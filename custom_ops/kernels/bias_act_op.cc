// Fused bias + activation + gain + clamp for the piecewise-linear activations of StyleGAN2
// (linear, relu, lrelu), CPU kernels. The pure-TF reference lives in custom_ops/bias_act.py; the
// Python wrapper chooses between them and builds the gradients from the two ops below.
//
//   StyleGAN2BiasAct:     y  = clamp(act(x + b[c]) * gain)
//   StyleGAN2BiasActGrad: dx = dy * act'(y) * gain * (|y| < clamp)
//
// The derivative is read from y, not x: for these activations (gain > 0, alpha > 0) the sign of y
// is the sign of x + b, and the derivative is piecewise constant, so the gradient op is linear in
// dy and is its own gradient. That gives exact gradients of any order (R1 differentiates twice).

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

namespace stylegan2 {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::errors::InvalidArgument;

enum class Act { kLinear, kRelu, kLrelu };

struct ActParams {
  Act act = Act::kLinear;
  float alpha = 0.f;
  float gain = 1.f;
  float clamp = -1.f;  // < 0: no clamping
};

static ::tensorflow::Status ParseParams(OpKernelConstruction* ctx, ActParams* p) {
  std::string act;
  TF_RETURN_IF_ERROR(ctx->GetAttr("act", &act));
  TF_RETURN_IF_ERROR(ctx->GetAttr("alpha", &p->alpha));
  TF_RETURN_IF_ERROR(ctx->GetAttr("gain", &p->gain));
  TF_RETURN_IF_ERROR(ctx->GetAttr("clamp", &p->clamp));
  p->act = act == "relu" ? Act::kRelu : act == "lrelu" ? Act::kLrelu : Act::kLinear;
  if (!(p->gain > 0.f)) return InvalidArgument("gain must be positive");
  if (p->act == Act::kLrelu && !(p->alpha > 0.f)) return InvalidArgument("lrelu alpha must be positive");
  return ::tensorflow::OkStatus();
}

// float for half/bfloat16/float, double for double.
template <typename T>
using Acc = typename std::conditional<std::is_same<T, double>::value, double, float>::type;

template <typename A>
inline A Forward(A v, const ActParams& p) {
  if (p.act == Act::kRelu) v = v > A(0) ? v : A(0);
  if (p.act == Act::kLrelu) v = v > A(0) ? v : v * A(p.alpha);
  v *= A(p.gain);
  if (p.clamp >= 0.f) v = std::fmin(std::fmax(v, A(-p.clamp)), A(p.clamp));
  return v;
}

// Work split: elements are cheap, so shards must be large.
static void ParallelFor(OpKernelContext* ctx, int64_t total, int64_t cost_per_unit,
                        const std::function<void(int64_t, int64_t)>& work) {
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
  ::tensorflow::Shard(workers->num_threads, workers->workers, total, cost_per_unit, work);
}

template <typename T>
class BiasActOp : public OpKernel {
 public:
  explicit BiasActOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ParseParams(ctx, &p_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& b = ctx->input(1);
    const int rank = x.dims();
    const int axis = axis_ < 0 ? axis_ + rank : axis_;
    OP_REQUIRES(ctx, rank >= 1 && axis >= 0 && axis < rank, InvalidArgument("axis out of range"));
    const int64_t channels = x.dim_size(axis);
    const bool has_bias = b.NumElements() > 0;
    OP_REQUIRES(ctx, !has_bias || (b.dims() == 1 && b.dim_size(0) == channels),
                InvalidArgument("bias must have shape [", channels, "]"));
    int64_t inner = 1;
    for (int i = axis + 1; i < rank; ++i) inner *= x.dim_size(i);

    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    const T* xp = x.flat<T>().data();
    const T* bp = has_bias ? b.flat<T>().data() : nullptr;
    T* yp = y->flat<T>().data();
    const ActParams p = p_;
    using A = Acc<T>;
    if (inner == 1) {
      // Channels last (NHWC): shard over rows of `channels` elements, the bias index is the column.
      ParallelFor(ctx, x.NumElements() / channels, 8 * channels, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const int64_t base = r * channels;
          for (int64_t c = 0; c < channels; ++c) {
            const A bias = bp ? static_cast<A>(bp[c]) : A(0);
            yp[base + c] = static_cast<T>(Forward<A>(static_cast<A>(xp[base + c]) + bias, p));
          }
        }
      });
    } else {
      // Channels before other axes: shard over runs of `inner` elements sharing one bias.
      ParallelFor(ctx, x.NumElements() / inner, 8 * inner, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const A bias = bp ? static_cast<A>(bp[k % channels]) : A(0);
          for (int64_t j = k * inner; j < (k + 1) * inner; ++j) {
            yp[j] = static_cast<T>(Forward<A>(static_cast<A>(xp[j]) + bias, p));
          }
        }
      });
    }
  }

 private:
  ActParams p_;
  int axis_ = -1;
};

template <typename T>
class BiasActGradOp : public OpKernel {
 public:
  explicit BiasActGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) { OP_REQUIRES_OK(ctx, ParseParams(ctx, &p_)); }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& y = ctx->input(1);
    OP_REQUIRES(ctx, dy.shape() == y.shape(), InvalidArgument("dy and y must have the same shape"));
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, dy.shape(), &dx));
    const T* dyp = dy.flat<T>().data();
    const T* yp = y.flat<T>().data();
    T* dxp = dx->flat<T>().data();
    const ActParams p = p_;
    using A = Acc<T>;
    ParallelFor(ctx, dy.NumElements(), 6, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const A yv = static_cast<A>(yp[i]);
        A g = static_cast<A>(dyp[i]) * A(p.gain);
        if (p.act == Act::kRelu && !(yv > A(0))) g = A(0);
        if (p.act == Act::kLrelu && !(yv > A(0))) g *= A(p.alpha);
        if (p.clamp >= 0.f && std::fabs(yv) >= A(p.clamp)) g = A(0);
        dxp[i] = static_cast<T>(g);
      }
    });
  }

 private:
  ActParams p_;
};

}  // namespace stylegan2

REGISTER_OP("StyleGAN2BiasAct")
    .Input("x: T")
    .Input("b: T")
    .Output("y: T")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("act: {'linear', 'relu', 'lrelu'}")
    .Attr("alpha: float = 0.2")
    .Attr("gain: float = 1.0")
    .Attr("clamp: float = -1.0")
    .Attr("axis: int = -1")
    .SetShapeFn(::tensorflow::shape_inference::UnchangedShape)
    .Doc("y = clamp(act(x + b) * gain); b runs along `axis` (empty b: no bias).");

REGISTER_OP("StyleGAN2BiasActGrad")
    .Input("dy: T")
    .Input("y: T")
    .Output("dx: T")
    .Attr("T: {half, bfloat16, float, double}")
    .Attr("act: {'linear', 'relu', 'lrelu'}")
    .Attr("alpha: float = 0.2")
    .Attr("gain: float = 1.0")
    .Attr("clamp: float = -1.0")
    .SetShapeFn(::tensorflow::shape_inference::UnchangedShape)
    .Doc("Gradient of StyleGAN2BiasAct w.r.t. (x + b), from dy and the op's output y.");

#define REGISTER_BIAS_ACT_CPU(T)                                                                  \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2BiasAct").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"), \
                          stylegan2::BiasActOp<T>);                                               \
  REGISTER_KERNEL_BUILDER(                                                                        \
      Name("StyleGAN2BiasActGrad").Device(::tensorflow::DEVICE_CPU).TypeConstraint<T>("T"),       \
      stylegan2::BiasActGradOp<T>);

REGISTER_BIAS_ACT_CPU(Eigen::half);
REGISTER_BIAS_ACT_CPU(Eigen::bfloat16);
REGISTER_BIAS_ACT_CPU(float);
REGISTER_BIAS_ACT_CPU(double);
