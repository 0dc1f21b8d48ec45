// The GPU kernel of StyleGAN2Upfirdn2d: checks and allocates as the CPU kernel does, then calls the
// TensorFlow-free launch code (cuda/upfirdn2d.cu) on TensorFlow's stream. The filter is an ordinary
// input, so it sits in device memory next to x. Compiled only with -DGOOGLE_CUDA=1.

#if GOOGLE_CUDA

#include "op_util.h"
#include "upfirdn2d_op.h"

namespace stylegan2 {

template <typename T>
class Upfirdn2dGpu : public Upfirdn2dBase {
 public:
  using Upfirdn2dBase::Upfirdn2dBase;

  void Compute(::tensorflow::OpKernelContext* ctx) override {
    sg2_upfirdn2d_args a;
    ::tensorflow::Tensor* y = nullptr;
    if (!Prepare(ctx, &a, &y) || y->NumElements() == 0) return;
    const int status = sg2_upfirdn2d(&a, DtypeCode<T>::value, ctx->input(0).flat<T>().data(),
                                     ctx->input(1).flat<float>().data(), y->flat<T>().data(), GpuStream(ctx));
    SetLaunchStatus(ctx, "upfirdn2d", status);
  }
};

}  // namespace stylegan2

#define REGISTER_UPFIRDN2D_GPU(T)                                                                  \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2Upfirdn2d").Device(::tensorflow::DEVICE_GPU).TypeConstraint<T>("T"), \
                          stylegan2::Upfirdn2dGpu<T>);

REGISTER_UPFIRDN2D_GPU(Eigen::half);
REGISTER_UPFIRDN2D_GPU(Eigen::bfloat16);
REGISTER_UPFIRDN2D_GPU(float);
REGISTER_UPFIRDN2D_GPU(double);

#endif  // GOOGLE_CUDA
