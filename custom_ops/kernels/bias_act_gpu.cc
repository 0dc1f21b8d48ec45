// The GPU kernels of StyleGAN2BiasAct, StyleGAN2BiasActGrad and StyleGAN2BiasActGradGrad: the
// checks of the CPU kernels, then the TensorFlow-free launch code (cuda/bias_act.cu) on
// TensorFlow's stream. Compiled only with -DGOOGLE_CUDA=1.

#if GOOGLE_CUDA

#include "bias_act_op.h"
#include "op_util.h"

namespace stylegan2 {

template <typename T, int kGrad>
class BiasActGpu : public BiasActBase {
 public:
  explicit BiasActGpu(OpKernelConstruction* ctx) : BiasActBase(ctx, kGrad) {}

  void Compute(OpKernelContext* ctx) override {
    Inputs in;
    if (!Prepare(ctx, &in)) return;
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, in.x->shape(), &y));
    if (in.args.size == 0) return;
    const int status = sg2_bias_act(&in.args, DtypeCode<T>::value, Data<T>(in.x), Data<T>(in.b), Data<T>(in.xref),
                                    Data<T>(in.yref), Data<T>(in.dy), y->flat<T>().data(), GpuStream(ctx));
    SetLaunchStatus(ctx, "bias_act", status);
  }
};

}  // namespace stylegan2

#define REGISTER_BIAS_ACT_GPU(T)                                                                         \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2BiasAct").Device(::tensorflow::DEVICE_GPU).TypeConstraint<T>("T"), \
                          stylegan2::BiasActGpu<T, 0>);                                                  \
  REGISTER_KERNEL_BUILDER(                                                                               \
      Name("StyleGAN2BiasActGrad").Device(::tensorflow::DEVICE_GPU).TypeConstraint<T>("T"),              \
      stylegan2::BiasActGpu<T, 1>);                                                                      \
  REGISTER_KERNEL_BUILDER(                                                                               \
      Name("StyleGAN2BiasActGradGrad").Device(::tensorflow::DEVICE_GPU).TypeConstraint<T>("T"),          \
      stylegan2::BiasActGpu<T, 2>);

REGISTER_BIAS_ACT_GPU(Eigen::half);
REGISTER_BIAS_ACT_GPU(Eigen::bfloat16);
REGISTER_BIAS_ACT_GPU(float);
REGISTER_BIAS_ACT_GPU(double);

#endif  // GOOGLE_CUDA
