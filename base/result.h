// Result<T>: the return type for recoverable errors (no exceptions for routine failures).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace vnetplan {

struct Error {
  std::string message;
  int sysErrno = 0;  // the errno behind it, when a system call failed (0 otherwise)
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(implicit)
  Result(Error err) : v_(std::move(err)) {}  // NOLINT(implicit)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Status: a Result with no value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error err) : err_(std::move(err)) {}  // NOLINT(implicit)
  static Status Ok() { return {}; }
  bool ok() const { return !err_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *err_; }

 private:
  std::optional<Error> err_;
};

inline Error err(std::string msg) { return Error{std::move(msg)}; }

}  // namespace vnetplan
