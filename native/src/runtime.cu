// Runtime entry points of the C ABI (native/include/diffusion4j.h): per-thread error text, version,
// devices, memory, copies, streams and the self-test kernel that CudaRuntime.probe runs before it
// declares a device usable.
//
// The CUDA runtime is linked statically (native/CMakeLists.txt), so none of this needs libcuda.so at load
// time; without a driver every call that touches the device fails with cudaErrorInsufficientDriver (35),
// which the Java side reports as "no CUDA driver".
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "internal.cuh"

namespace {

// Text of this thread's last failure. Fixed-size so that recording an error can never fail itself.
constexpr int kErrorCapacity = 1024;
thread_local char t_last_error[kErrorCapacity] = {0};

constexpr int kSelfTestN = 1024;

// out[i] = i*3 + 1: one value per thread, so a wrong grid, a dead SM or a broken copy shows up.
__global__ void self_test_kernel(int32_t *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = i * 3 + 1;
  }
}

} // namespace

// The error recording helpers declared in internal.cuh; they live here beside the thread-local text.
int d4j_fail(int status, const char *op, const char *fmt, ...) {
  int used = std::snprintf(t_last_error, kErrorCapacity, "%s: ", op != nullptr ? op : "d4j");
  if (used < 0 || used >= kErrorCapacity) {
    used = 0;
  }
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(t_last_error + used, static_cast<size_t>(kErrorCapacity - used), fmt, args);
  va_end(args);
  return status;
}

int d4j_check_launch(const char *op) { return d4j::cuda_status(cudaGetLastError(), op); }

namespace {

// A CUDA runtime call that failed: record it and clear the runtime's non-sticky last error, so that the
// next launch check does not report it again.
int cuda_try(cudaError_t err, const char *op) {
  if (err == cudaSuccess) {
    return D4J_OK;
  }
  (void)cudaGetLastError();
  return d4j::cuda_status(err, op);
}

} // namespace

#define D4J_CUDA_TRY(call, op)                                                                      \
  do {                                                                                              \
    int d4j_status_ = cuda_try((call), (op));                                                       \
    if (d4j_status_ != D4J_OK) {                                                                    \
      return d4j_status_;                                                                           \
    }                                                                                               \
  } while (0)

extern "C" {

const char *d4j_last_error(void) { return t_last_error; }

int d4j_version(void) { return D4J_VERSION_MAJOR * 10000 + D4J_VERSION_MINOR * 100 + D4J_VERSION_PATCH; }

int d4j_device_count(int *count) {
  D4J_REQUIRE(count != nullptr, "d4j_device_count", "count is NULL");
  *count = 0;
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    return cuda_try(err, "d4j_device_count");
  }
  *count = n;
  return D4J_OK;
}

int d4j_device_info(int device, char *name, int name_capacity, int *cc_major, int *cc_minor,
                    int64_t *total_memory_bytes, int *multiprocessors, int *driver_version,
                    int *runtime_version) {
  const char *op = "d4j_device_info";
  D4J_REQUIRE(name != nullptr && name_capacity > 0, op, "name buffer is NULL or empty (capacity %d)",
              name_capacity);
  D4J_REQUIRE(cc_major != nullptr && cc_minor != nullptr && total_memory_bytes != nullptr &&
                  multiprocessors != nullptr && driver_version != nullptr && runtime_version != nullptr,
              op, "an output pointer is NULL");
  name[0] = '\0';
  *driver_version = 0;
  *runtime_version = 0;
  D4J_CUDA_TRY(cudaDriverGetVersion(driver_version), op);
  D4J_CUDA_TRY(cudaRuntimeGetVersion(runtime_version), op);
  cudaDeviceProp prop;
  std::memset(&prop, 0, sizeof(prop));
  D4J_CUDA_TRY(cudaGetDeviceProperties(&prop, device), op);
  std::strncpy(name, prop.name, static_cast<size_t>(name_capacity) - 1);
  name[name_capacity - 1] = '\0';
  *cc_major = prop.major;
  *cc_minor = prop.minor;
  *total_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  *multiprocessors = prop.multiProcessorCount;
  return D4J_OK;
}

int d4j_set_device(int device) {
  D4J_CUDA_TRY(cudaSetDevice(device), "d4j_set_device");
  return D4J_OK;
}

int d4j_self_test(void) {
  const char *op = "d4j_self_test";
  int32_t *dev = nullptr;
  D4J_CUDA_TRY(cudaMalloc(reinterpret_cast<void **>(&dev), kSelfTestN * sizeof(int32_t)), op);
  int32_t host[kSelfTestN];
  std::memset(host, 0xff, sizeof(host));
  int status = cuda_try(cudaMemset(dev, 0, kSelfTestN * sizeof(int32_t)), op);
  if (status == D4J_OK) {
    self_test_kernel<<<(kSelfTestN + 127) / 128, 128>>>(dev, kSelfTestN);
    status = d4j_check_launch(op);
  }
  if (status == D4J_OK) {
    status = cuda_try(cudaMemcpy(host, dev, sizeof(host), cudaMemcpyDeviceToHost), op);
  }
  cudaError_t free_err = cudaFree(dev);
  if (status == D4J_OK) {
    status = cuda_try(free_err, op);
  }
  if (status != D4J_OK) {
    return status;
  }
  for (int i = 0; i < kSelfTestN; i++) {
    if (host[i] != i * 3 + 1) {
      return d4j_fail(D4J_ERR_SELF_TEST, op, "element %d is %d, expected %d (kernel did not run or copy failed)",
                            i, host[i], i * 3 + 1);
    }
  }
  return D4J_OK;
}

int d4j_malloc(void **ptr, int64_t bytes) {
  const char *op = "d4j_malloc";
  D4J_REQUIRE(ptr != nullptr, op, "ptr is NULL");
  *ptr = nullptr;
  D4J_REQUIRE(bytes >= 0, op, "negative size %lld bytes", static_cast<long long>(bytes));
  if (bytes == 0) {
    return D4J_OK;
  }
  cudaError_t err = cudaMalloc(ptr, static_cast<size_t>(bytes));
  if (err != cudaSuccess) {
    *ptr = nullptr;
    cudaGetLastError();
    return d4j_fail(static_cast<int>(err), op, "%s: %s (allocating %lld bytes)", cudaGetErrorName(err),
                          cudaGetErrorString(err), static_cast<long long>(bytes));
  }
  return D4J_OK;
}

int d4j_free(void *ptr) {
  if (ptr == nullptr) {
    return D4J_OK; // like free(NULL); also needs no driver
  }
  D4J_CUDA_TRY(cudaFree(ptr), "d4j_free");
  return D4J_OK;
}

int d4j_malloc_host(void **host_ptr, int64_t bytes) {
  const char *op = "d4j_malloc_host";
  D4J_REQUIRE(host_ptr != nullptr, op, "host_ptr is NULL");
  *host_ptr = nullptr;
  D4J_REQUIRE(bytes >= 0, op, "negative size %lld bytes", static_cast<long long>(bytes));
  if (bytes == 0) {
    return D4J_OK;
  }
  cudaError_t err = cudaMallocHost(host_ptr, static_cast<size_t>(bytes));
  if (err != cudaSuccess) {
    *host_ptr = nullptr;
    cudaGetLastError();
    return d4j_fail(static_cast<int>(err), op, "%s: %s (allocating %lld pinned bytes)", cudaGetErrorName(err),
                          cudaGetErrorString(err), static_cast<long long>(bytes));
  }
  return D4J_OK;
}

int d4j_free_host(void *host_ptr) {
  if (host_ptr == nullptr) {
    return D4J_OK;
  }
  D4J_CUDA_TRY(cudaFreeHost(host_ptr), "d4j_free_host");
  return D4J_OK;
}

namespace {
int copy_async(void *dst, const void *src, int64_t bytes, cudaMemcpyKind kind, void *stream, const char *op) {
  D4J_REQUIRE(bytes >= 0, op, "negative size %lld bytes", static_cast<long long>(bytes));
  if (bytes == 0) {
    return D4J_OK;
  }
  D4J_REQUIRE(dst != nullptr && src != nullptr, op, "NULL %s for %lld bytes", dst == nullptr ? "dst" : "src",
              static_cast<long long>(bytes));
  D4J_CUDA_TRY(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), kind, d4j::as_stream(stream)), op);
  return D4J_OK;
}
} // namespace

int d4j_memcpy_h2d(void *dst, const void *host_src, int64_t bytes, void *stream) {
  return copy_async(dst, host_src, bytes, cudaMemcpyHostToDevice, stream, "d4j_memcpy_h2d");
}

int d4j_memcpy_d2h(void *host_dst, const void *src, int64_t bytes, void *stream) {
  return copy_async(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream, "d4j_memcpy_d2h");
}

int d4j_memcpy_d2d(void *dst, const void *src, int64_t bytes, void *stream) {
  return copy_async(dst, src, bytes, cudaMemcpyDeviceToDevice, stream, "d4j_memcpy_d2d");
}

int d4j_stream_create(void **stream) {
  D4J_REQUIRE(stream != nullptr, "d4j_stream_create", "stream is NULL");
  *stream = nullptr;
  cudaStream_t s = nullptr;
  // Non-blocking: no implicit synchronisation with the legacy default stream (other libraries' work).
  D4J_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "d4j_stream_create");
  *stream = static_cast<void *>(s);
  return D4J_OK;
}

int d4j_stream_destroy(void *stream) {
  if (stream == nullptr) {
    return D4J_OK;
  }
  D4J_CUDA_TRY(cudaStreamDestroy(d4j::as_stream(stream)), "d4j_stream_destroy");
  return D4J_OK;
}

int d4j_stream_synchronize(void *stream) {
  D4J_CUDA_TRY(cudaStreamSynchronize(d4j::as_stream(stream)), "d4j_stream_synchronize");
  return D4J_OK;
}

} // extern "C"
