// Reports the TensorFlow version this library was compiled against, so that the Python loader can
// refuse a library built for another version (TensorFlow's C++ ABI changes between releases).

#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

// Defined by the build (custom_ops/build.py, or the Bazel repository rule in tf_configure.bzl)
// from the installed TensorFlow's version.
#ifndef STYLEGAN2_TF_VERSION
#error "compile with -DSTYLEGAN2_TF_VERSION=\"<tensorflow version>\""
#endif

namespace stylegan2 {

class OpsInfoOp : public ::tensorflow::OpKernel {
 public:
  using OpKernel::OpKernel;
  void Compute(::tensorflow::OpKernelContext* ctx) override {
    ::tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, ::tensorflow::TensorShape({}), &out));
    out->scalar<::tensorflow::tstring>()() = STYLEGAN2_TF_VERSION;
  }
};

}  // namespace stylegan2

REGISTER_OP("StyleGAN2OpsInfo")
    .Output("tensorflow_version: string")
    .SetShapeFn(::tensorflow::shape_inference::ScalarShape)
    .Doc("The TensorFlow version the tf-stylegan2 kernels were compiled against.");

REGISTER_KERNEL_BUILDER(Name("StyleGAN2OpsInfo").Device(::tensorflow::DEVICE_CPU), stylegan2::OpsInfoOp);
