// What the OpKernels share: one-line errors and, in CUDA builds (-DGOOGLE_CUDA=1), TensorFlow's
// CUDA stream, the C API's element type codes and its status as a TensorFlow error.
#ifndef STYLEGAN2_OP_UTIL_H_
#define STYLEGAN2_OP_UTIL_H_

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"

#if GOOGLE_CUDA
#include "cuda/api.h"
#include "xla/stream_executor/stream.h"
#endif

namespace stylegan2 {

template <typename... Args>
absl::Status InvalidArgument(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

#if GOOGLE_CUDA

// The stream TensorFlow runs this op's device work on (a CUstream, which is a cudaStream_t).
inline cudaStream_t GpuStream(::tensorflow::OpKernelContext* ctx) {
  return static_cast<cudaStream_t>(ctx->op_device_context()->stream()->platform_specific_handle().stream);
}

template <typename T>
struct DtypeCode;
template <>
struct DtypeCode<float> {
  static constexpr int value = SG2_FLOAT32;
};
template <>
struct DtypeCode<Eigen::half> {
  static constexpr int value = SG2_FLOAT16;
};
template <>
struct DtypeCode<Eigen::bfloat16> {
  static constexpr int value = SG2_BFLOAT16;
};
template <>
struct DtypeCode<double> {
  static constexpr int value = SG2_FLOAT64;
};

inline void SetLaunchStatus(::tensorflow::OpKernelContext* ctx, const char* op, int status) {
  if (status != SG2_OK) {
    ctx->SetStatus(absl::InternalError(absl::StrCat(op, " CUDA kernel: ", sg2_error_string(status),
                                                   " (python -m custom_ops.cuda_selftest checks the GPU)")));
  }
}

#endif  // GOOGLE_CUDA

}  // namespace stylegan2

#endif  // STYLEGAN2_OP_UTIL_H_
