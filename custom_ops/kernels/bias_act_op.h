// The attributes, inputs and shape checks of the bias_act kernels, shared by the CPU kernels
// (bias_act_op.cc) and the GPU kernels (bias_act_gpu.cc). The ops are registered in bias_act_op.cc.
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

// Mode `grad` of the kernels: reads the attributes, the inputs of that mode, and the validated
// argument record of the C API.
class BiasActBase : public OpKernel {
 public:
  BiasActBase(OpKernelConstruction* ctx, int grad) : OpKernel(ctx) {
    std::string act;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("act", &act));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("alpha", &args_.alpha));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("gain", &args_.gain));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("clamp", &args_.clamp));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
    args_.act = ActCode(act);
    args_.grad = grad;
  }

 protected:
  struct Inputs {
    const Tensor* x = nullptr;  // the tensor transformed: x, dy or ddx
    const Tensor* b = nullptr;
    const Tensor* xref = nullptr;
    const Tensor* yref = nullptr;
    const Tensor* dy = nullptr;
    sg2_bias_act_args args;
  };

  // Reads the inputs of this mode and checks their shapes; false (with the error set) if invalid.
  bool Prepare(OpKernelContext* ctx, Inputs* in) {
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

#endif  // STYLEGAN2_BIAS_ACT_OP_H_
