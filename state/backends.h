// The state backends by URL scheme: each one's opener (openBackend in store.h picks by scheme).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "state/store.h"

namespace vnetplan::state {

// file://DIR (DIR relative to the working directory; file:///abs for an absolute one). `rest` is DIR.
Result<std::unique_ptr<Backend>> openFileBackend(const std::string& url, const std::string& rest);
// etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?options] (state/backend_etcd.cpp lists the options).
Result<std::unique_ptr<Backend>> openEtcdBackend(const std::string& url, const std::string& rest);

// The URL with anything that looks like a credential (userinfo, a password option) replaced by "***": for
// messages about a URL that was refused.
std::string redactStateUrl(const std::string& url);

// Requests the etcd backends of this process have sent to etcd (every attempt): for metrics and benchmarks.
uint64_t etcdRequestsSent();

// How long one key component is as a file name of the file backend, and the file system's limit.
size_t fileBackendNameBytes(const std::string& component);
constexpr size_t kFileBackendMaxNameBytes = 255;  // NAME_MAX on Linux file systems

}  // namespace vnetplan::state
