// The GPU kernels of StyleGAN2BiasAct, StyleGAN2BiasActGrad and StyleGAN2BiasActGradGrad: the
// checks of every device (bias_act_op.h), then the TensorFlow-free launch code (cuda/bias_act.cu)
// on TensorFlow's stream. Compiled only with -DGOOGLE_CUDA=1.

#if GOOGLE_CUDA

#include "bias_act_op.h"
#include "op_util.h"

namespace stylegan2 {

// The mode is a uniform branch of the CUDA kernel (in.args.grad), not a template parameter.
template <typename T, int kGrad>
void bias_act_gpu(OpKernelContext* ctx, const BiasActInputs& in, Tensor* y) {
  const int status = sg2_bias_act(&in.args, DtypeCode<T>::value, Data<T>(in.x), Data<T>(in.b), Data<T>(in.xref),
                                  Data<T>(in.yref), Data<T>(in.dy), y->flat<T>().data(), GpuStream(ctx));
  SetLaunchStatus(ctx, "bias_act", status);
}

}  // namespace stylegan2

STYLEGAN2_REGISTER_FOR_EACH_TYPE(STYLEGAN2_REGISTER_BIAS_ACT, ::tensorflow::DEVICE_GPU, stylegan2::bias_act_gpu)

#endif  // GOOGLE_CUDA
