// The GPU kernel of StyleGAN2Upfirdn2d: the checks of every device (upfirdn2d_op.h), then the
// TensorFlow-free launch code (cuda/upfirdn2d.cu) on TensorFlow's stream. The filter is an ordinary
// input, so it sits in device memory next to x. Compiled only with -DGOOGLE_CUDA=1.

#if GOOGLE_CUDA

#include "op_util.h"
#include "upfirdn2d_op.h"

namespace stylegan2 {

template <typename T>
void upfirdn2d_gpu(::tensorflow::OpKernelContext* ctx, const sg2_upfirdn2d_args& a, const ::tensorflow::Tensor& x,
                   const ::tensorflow::Tensor& f, ::tensorflow::Tensor* y) {
  const int status = sg2_upfirdn2d(&a, DtypeCode<T>::value, x.flat<T>().data(), f.flat<float>().data(),
                                   y->flat<T>().data(), GpuStream(ctx));
  SetLaunchStatus(ctx, "upfirdn2d", status);
}

}  // namespace stylegan2

STYLEGAN2_REGISTER_FOR_EACH_TYPE(STYLEGAN2_REGISTER_UPFIRDN2D, ::tensorflow::DEVICE_GPU, stylegan2::upfirdn2d_gpu)

#endif  // GOOGLE_CUDA
