// Progress reporting for long operations: a TTY status line, or structured log lines otherwise.
#pragma once
#include <string>

namespace vnetplan {

class Progress {
 public:
  virtual ~Progress() = default;
  // Step `done` of `total` on `target` finished (`what` = the provider's description of it).
  virtual void step(const std::string& target, size_t done, size_t total, const std::string& what) = 0;
  // A phase or outcome worth telling the user ("verifying", "rolling back").
  virtual void note(const std::string& target, const std::string& message) = 0;
  // `done` of `total` targets observed (the last one: `target`).
  virtual void targets(size_t done, size_t total, const std::string& target) { (void)done, (void)total, (void)target; }
};

class NullProgress : public Progress {
 public:
  void step(const std::string&, size_t, size_t, const std::string&) override {}
  void note(const std::string&, const std::string&) override {}
};

}  // namespace vnetplan
