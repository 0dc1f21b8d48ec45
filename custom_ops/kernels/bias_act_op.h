// The bias_act kernels of every device: the attributes, the inputs and their shape checks, the
// output and the registration; the CPU (bias_act_op.cc) and the GPU (bias_act_gpu.cc) each supply
// the computation. The ops are registered in bias_act_op.cc.
#ifndef STYLEGAN2_BIAS_ACT_OP_H_
#define STYLEGAN2_BIAS_ACT_OP_H_

#include <cstdint>
#include <string>

#include "cuda/bias_act.h"
#include "op_util.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace stylegan2 {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;

inline int ActCode(const std::string& act) {
  const char* names[] = {"linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"};
  for (int i = 0; i < 9; ++i) {
    if (act == names[i]) return SG2_ACT_LINEAR + i;
  }
  return 0;
}

// The inputs of one call, checked, and the argument record of the C API for it.
struct BiasActInputs {
  const Tensor* x = nullptr;  // the tensor transformed: x, dy or ddx
  const Tensor* b = nullptr;
  const Tensor* xref = nullptr;
  const Tensor* yref = nullptr;
  const Tensor* dy = nullptr;
  sg2_bias_act_args args;
};

// A device's computation of a checked call in mode kGrad: y = bias_act(in), y allocated with the
// shape of in.x and not empty.
typedef void (*BiasActRun)(OpKernelContext* ctx, const BiasActInputs& in, Tensor* y);

// The kernel of mode `kGrad` (0: StyleGAN2BiasAct, 1: ...Grad, 2: ...GradGrad) on one device: reads
// the attributes and the inputs of that mode, checks them and allocates the output as every device
// does, then runs the device's kRun.
template <int kGrad, BiasActRun kRun>
class BiasActOp : public OpKernel {
 public:
  explicit BiasActOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::string act;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("act", &act));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("alpha", &args_.alpha));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("gain", &args_.gain));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("clamp", &args_.clamp));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
    args_.act = ActCode(act);
    args_.grad = kGrad;
  }

  void Compute(OpKernelContext* ctx) override {
    BiasActInputs in;
    if (!Prepare(ctx, &in)) return;
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, in.x->shape(), &y));
    if (in.args.size > 0) kRun(ctx, in, y);
  }

 private:
  // Reads the inputs of this mode and checks their shapes; false (with the error set) if invalid.
  bool Prepare(OpKernelContext* ctx, BiasActInputs* in) {
    const int grad = args_.grad;
    in->x = &ctx->input(0);
    if (grad == 0) {
      in->b = &ctx->input(1);
    } else {
      in->dy = grad == 2 ? &ctx->input(1) : nullptr;
      in->xref = &ctx->input(grad);
      in->b = &ctx->input(grad + 1);
      in->yref = &ctx->input(grad + 2);
    }
    const Tensor& x = *in->x;
    const int rank = x.dims();
    const int axis = axis_ < 0 ? axis_ + rank : axis_;
    if (rank < 1 || axis < 0 || axis >= rank) {
      ctx->SetStatus(InvalidArgument("bias_act: axis ", axis_, " out of range for rank ", rank));
      return false;
    }
    if (x.NumElements() > INT32_MAX) {
      ctx->SetStatus(InvalidArgument("bias_act: ", x.NumElements(), " elements is over the kernels' 2^31 limit"));
      return false;
    }
    for (const Tensor* t : {in->xref, in->yref, in->dy}) {
      if (t && t->NumElements() > 0 && t->shape() != x.shape()) {
        ctx->SetStatus(InvalidArgument("bias_act: gradient inputs must have shape ", x.shape().DebugString(),
                                       ", got ", t->shape().DebugString()));
        return false;
      }
    }
    const int64_t channels = x.dim_size(axis);
    const bool has_bias = in->b->NumElements() > 0;
    if (has_bias && (in->b->dims() != 1 || in->b->dim_size(0) != channels)) {
      ctx->SetStatus(InvalidArgument("bias_act: bias must have shape [", channels, "], got ",
                                     in->b->shape().DebugString()));
      return false;
    }
    int64_t inner = 1;
    for (int i = axis + 1; i < rank; ++i) inner *= x.dim_size(i);
    in->args = args_;
    in->args.size = static_cast<int32_t>(x.NumElements());
    in->args.size_b = has_bias ? static_cast<int32_t>(channels) : 0;
    in->args.step_b = static_cast<int32_t>(inner > 0 ? inner : 1);
    if (in->xref && in->xref->NumElements() == 0) in->xref = nullptr;
    if (in->yref && in->yref->NumElements() == 0) in->yref = nullptr;
    if (!has_bias) in->b = nullptr;
    const int status = bias_act_check(in->args, in->x, in->b, in->xref, in->yref, in->dy, in->x);
    if (status != SG2_OK) {
      ctx->SetStatus(InvalidArgument("bias_act: the inputs do not fit the activation and mode (",
                                     args_.grad == 0 ? "forward" : "gradient", ")"));
      return false;
    }
    return true;
  }

  sg2_bias_act_args args_ = {};
  int axis_ = -1;
};

template <typename T>
const T* Data(const ::tensorflow::Tensor* t) {
  return t ? t->flat<T>().data() : nullptr;
}

}  // namespace stylegan2

// For STYLEGAN2_REGISTER_FOR_EACH_TYPE: BiasActOp<mode, RUN<T, mode>> as DEVICE's kernels of the
// three ops.
#define STYLEGAN2_REGISTER_BIAS_ACT(DEVICE, RUN, T)                                                      \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2BiasAct").Device(DEVICE).TypeConstraint<T>("T"),                \
                          stylegan2::BiasActOp<0, RUN<T, 0>>);                                           \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2BiasActGrad").Device(DEVICE).TypeConstraint<T>("T"),            \
                          stylegan2::BiasActOp<1, RUN<T, 1>>);                                           \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2BiasActGradGrad").Device(DEVICE).TypeConstraint<T>("T"),        \
                          stylegan2::BiasActOp<2, RUN<T, 2>>);

#endif  // STYLEGAN2_BIAS_ACT_OP_H_
