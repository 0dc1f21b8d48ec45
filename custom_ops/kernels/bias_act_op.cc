// Fused bias + activation + gain + clamp: the ops (one library serves CPU and GPU) and their CPU
// kernels. The GPU kernels are in bias_act_gpu.cc; both evaluate bias_act_value (cuda/bias_act.h),
// so the numbers agree between devices. The Python wrapper is custom_ops/bias_act.py.
//
//   StyleGAN2BiasAct:         y   = clamp(act(x + b) * gain)                              (mode 0)
//   StyleGAN2BiasActGrad:     dx  = dy * act'(x + b) * gain * [|y| < clamp]                (mode 1)
//   StyleGAN2BiasActGradGrad: d_x = ddx * dy * act''(x + b) * gain * [|y| < clamp]         (mode 2)
//
// The gradient ops take the forward input x and bias b only where they read them (swish) or where
// a gradient must flow back to them (activations with a second derivative); otherwise x and b are
// empty. GradGrad is the derivative of Grad with respect to x, which is what a GradientTape of a
// GradientTape (R1, path length) needs; like NVIDIA's, the kernels stop at second order.

#include <functional>

#include "bias_act_op.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"

#define STYLEGAN2_BIAS_ACT_ATTRS                                                              \
  Attr(STYLEGAN2_TYPE_ATTR)                                                                   \
      .Attr("act: {'linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish'}") \
      .Attr("alpha: float = 0.2")                                                             \
      .Attr("gain: float = 1.0")                                                              \
      .Attr("clamp: float = -1.0")                                                            \
      .Attr("axis: int = -1")

REGISTER_OP("StyleGAN2BiasAct")
    .Input("x: T")
    .Input("b: T")
    .Output("y: T")
    .STYLEGAN2_BIAS_ACT_ATTRS
    .SetShapeFn(::tensorflow::shape_inference::UnchangedShape)
    .Doc("y = clamp(act(x + b) * gain); b runs along `axis` (empty b: no bias; clamp < 0: none).");

REGISTER_OP("StyleGAN2BiasActGrad")
    .Input("dy: T")
    .Input("x: T")
    .Input("b: T")
    .Input("y: T")
    .Output("dx: T")
    .STYLEGAN2_BIAS_ACT_ATTRS
    .SetShapeFn(::tensorflow::shape_inference::UnchangedShape)
    .Doc("Gradient of StyleGAN2BiasAct w.r.t. x + b, from dy, the op's input x and b (or empty) and output y.");

REGISTER_OP("StyleGAN2BiasActGradGrad")
    .Input("ddx: T")
    .Input("dy: T")
    .Input("x: T")
    .Input("b: T")
    .Input("y: T")
    .Output("d_x: T")
    .STYLEGAN2_BIAS_ACT_ATTRS
    .SetShapeFn(::tensorflow::shape_inference::UnchangedShape)
    .Doc("Gradient of <ddx, StyleGAN2BiasActGrad(dy, x, b, y)> w.r.t. x + b.");

namespace stylegan2 {

template <typename T, int kGrad>
void bias_act_cpu(OpKernelContext* ctx, const BiasActInputs& in, Tensor* y) {
  const sg2_bias_act_args p = in.args;
  const T *x = Data<T>(in.x), *b = Data<T>(in.b), *xref = Data<T>(in.xref), *yref = Data<T>(in.yref),
          *dy = Data<T>(in.dy);
  T* out = y->flat<T>().data();
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
  auto shard = [&](int64_t units, int64_t cost, const std::function<void(int64_t, int64_t)>& work) {
    ::tensorflow::Shard(workers->num_threads, workers->workers, units, cost, work);
  };
  typedef typename Accumulator<T>::type A;
  dispatch_act(p.act, [&](auto act) {
    constexpr int kAct = decltype(act)::value;
    // Loads only what this mode and activation read (bias_act.h), with the mode a constant, so
    // that the loops below vectorize.
    auto element = [&](int64_t i, A bias) {
      const A xr = kGrad > 0 && kAct == SG2_ACT_SWISH ? static_cast<A>(xref[i]) : A(0);
      const A yr = kGrad > 0 ? static_cast<A>(yref[i]) : A(0);
      const A dv = kGrad == 2 ? static_cast<A>(dy[i]) : A(0);
      out[i] = static_cast<T>(bias_act_value<kAct, A>(p, kGrad, static_cast<A>(x[i]), bias, xr, yr, dv));
    };
    const bool bias = b && (kGrad == 0 || kAct == SG2_ACT_SWISH);  // gradients read b for swish only
    if (!bias) {
      shard(p.size, 8, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) element(i, A(0));
      });
    } else if (p.step_b == 1) {  // channels last (NHWC): rows of size_b elements, the bias per column
      const int64_t c = p.size_b;
      shard(p.size / c, 8 * c, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          for (int64_t k = 0; k < c; ++k) element(r * c + k, static_cast<A>(b[k]));
        }
      });
    } else {  // channels before other axes: runs of step_b elements sharing one bias
      const int64_t run = p.step_b;
      shard(p.size / run, 8 * run, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const A bv = static_cast<A>(b[r % p.size_b]);
          for (int64_t i = r * run; i < (r + 1) * run; ++i) element(i, bv);
        }
      });
    }
    return SG2_OK;
  });
}

}  // namespace stylegan2

STYLEGAN2_REGISTER_FOR_EACH_TYPE(STYLEGAN2_REGISTER_BIAS_ACT, ::tensorflow::DEVICE_CPU, stylegan2::bias_act_cpu)
