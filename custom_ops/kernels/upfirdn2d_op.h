// The upfirdn2d kernel of every device: the attributes, the shape checks, the output and the
// registration; the CPU (upfirdn2d_op.cc) and the GPU (upfirdn2d_gpu.cc) each supply the
// computation. The op is registered in upfirdn2d_op.cc.
#ifndef STYLEGAN2_UPFIRDN2D_OP_H_
#define STYLEGAN2_UPFIRDN2D_OP_H_

#include "cuda/upfirdn2d.h"
#include "op_util.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace stylegan2 {

// A device's computation of a checked call: y = upfirdn2d(x, f) for x [N, H, W, C] and f [fh, fw]
// float32 as `a` describes them, into y, allocated and not empty.
typedef void (*Upfirdn2dRun)(::tensorflow::OpKernelContext* ctx, const sg2_upfirdn2d_args& a,
                             const ::tensorflow::Tensor& x, const ::tensorflow::Tensor& f, ::tensorflow::Tensor* y);

// The kernel of StyleGAN2Upfirdn2d on one device: the attributes, checks and output of every
// device, then the device's kRun.
template <Upfirdn2dRun kRun>
class Upfirdn2dOp : public ::tensorflow::OpKernel {
 public:
  explicit Upfirdn2dOp(::tensorflow::OpKernelConstruction* ctx) : OpKernel(ctx) {
    bool flip = false;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("upx", &args_.upx));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("upy", &args_.upy));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("downx", &args_.downx));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("downy", &args_.downy));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padx0", &args_.padx0));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padx1", &args_.padx1));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pady0", &args_.pady0));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pady1", &args_.pady1));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("flip_filter", &flip));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("gain", &args_.gain));
    args_.flip = flip ? 1 : 0;
    OP_REQUIRES(ctx, args_.upx >= 1 && args_.upy >= 1 && args_.downx >= 1 && args_.downy >= 1,
                InvalidArgument("upfirdn2d: up and down factors must be >= 1"));
  }

  void Compute(::tensorflow::OpKernelContext* ctx) override {
    sg2_upfirdn2d_args a;
    ::tensorflow::Tensor* y = nullptr;
    if (Prepare(ctx, &a, &y) && y->NumElements() > 0) kRun(ctx, a, ctx->input(0), ctx->input(1), y);
  }

 private:
  // Checks x [N, H, W, C] and f [fh, fw], fills `a` and allocates the output; false (with the
  // error set) if the call is invalid.
  bool Prepare(::tensorflow::OpKernelContext* ctx, sg2_upfirdn2d_args* a, ::tensorflow::Tensor** y) {
    const ::tensorflow::Tensor& x = ctx->input(0);
    const ::tensorflow::Tensor& f = ctx->input(1);
    if (x.dims() != 4) {
      ctx->SetStatus(InvalidArgument("upfirdn2d: x must be NHWC, got rank ", x.dims()));
      return false;
    }
    if (f.dims() != 2 || f.NumElements() == 0) {
      ctx->SetStatus(InvalidArgument("upfirdn2d: f must be a non-empty 2-D filter"));
      return false;
    }
    const int64_t limit = INT32_MAX;
    if (x.NumElements() > limit || f.NumElements() > limit) {
      ctx->SetStatus(InvalidArgument("upfirdn2d: tensors of 2^31 elements or more are over the kernels' limit"));
      return false;
    }
    *a = args_;
    a->n = static_cast<int32_t>(x.dim_size(0));
    a->in_h = static_cast<int32_t>(x.dim_size(1));
    a->in_w = static_cast<int32_t>(x.dim_size(2));
    a->c = static_cast<int32_t>(x.dim_size(3));
    a->fh = static_cast<int32_t>(f.dim_size(0));
    a->fw = static_cast<int32_t>(f.dim_size(1));
    const int status = upfirdn2d_check(*a);
    if (status == SG2_ERROR_TOO_LARGE) {
      ctx->SetStatus(InvalidArgument("upfirdn2d: the output or the padded input reaches 2^31 elements"));
      return false;
    }
    if (status != SG2_OK) {
      ctx->SetStatus(InvalidArgument("upfirdn2d: the padded input ", x.shape().DebugString(),
                                     " is smaller than the filter, or empty"));
      return false;
    }
    const ::tensorflow::TensorShape shape({a->n, upfirdn2d_out_h(*a), upfirdn2d_out_w(*a), a->c});
    const absl::Status allocated = ctx->allocate_output(0, shape, y);
    if (!allocated.ok()) {
      ctx->SetStatus(allocated);
      return false;
    }
    return true;
  }

  sg2_upfirdn2d_args args_ = {};
};

}  // namespace stylegan2

// For STYLEGAN2_REGISTER_FOR_EACH_TYPE: Upfirdn2dOp<RUN<T>> as DEVICE's kernel of StyleGAN2Upfirdn2d.
#define STYLEGAN2_REGISTER_UPFIRDN2D(DEVICE, RUN, T)                                        \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2Upfirdn2d").Device(DEVICE).TypeConstraint<T>("T"), \
                          stylegan2::Upfirdn2dOp<RUN<T>>);

#endif  // STYLEGAN2_UPFIRDN2D_OP_H_
