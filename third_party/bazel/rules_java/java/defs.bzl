"""Re-exports Bazel's native Java rules under the names @rules_java provides. Nothing here is Java:
Bazel's own @bazel_tools loads these names while setting up its default toolchains."""

java_binary = native.java_binary
java_import = native.java_import
java_library = native.java_library
java_proto_library = native.java_proto_library
java_runtime = native.java_runtime
java_test = native.java_test
java_toolchain = native.java_toolchain
