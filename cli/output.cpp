#include "cli/output.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace vnetplan::cli {

void setupLogging(const OutputOptions& o) {
  spdlog::drop("vnetplan");  // a second run in one process (tests) sets it up afresh
  auto logger = spdlog::stderr_logger_mt("vnetplan");
  if (o.logFormat == "json")
    logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%v"})", spdlog::pattern_time_type::utc);
  else
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v", spdlog::pattern_time_type::utc);
  auto level = spdlog::level::from_str(o.logLevel);
  int l = static_cast<int>(level) - o.verbosity;
  l = std::clamp(l, static_cast<int>(spdlog::level::trace), static_cast<int>(spdlog::level::off));
  logger->set_level(static_cast<spdlog::level::level_enum>(l));
  spdlog::set_default_logger(logger);
}

bool useColor(const OutputOptions& o, int fd) {
  if (o.noColor) return false;
  const char* nc = std::getenv("NO_COLOR");
  if (nc && *nc) return false;
  const char* term = std::getenv("TERM");
  if (term && std::string(term) == "dumb") return false;
  return isatty(fd) != 0;
}

namespace {

// One line rewritten in place on stderr.
class TtyProgress : public Progress {
 public:
  void step(const std::string& target, size_t done, size_t total, const std::string& what) override {
    std::lock_guard<std::mutex> g(mu_);
    std::string line = "[" + target + "] " + std::to_string(done) + "/" + std::to_string(total) + " " + what;
    if (line.size() > 100) line = line.substr(0, 97) + "...";
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    if (done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
  void note(const std::string& target, const std::string& message) override {
    std::lock_guard<std::mutex> g(mu_);
    std::fprintf(stderr, "\r\033[K[%s] %s\n", target.c_str(), message.c_str());
  }
  void targets(size_t done, size_t total, const std::string&) override {
    if (total < 2) return;
    std::lock_guard<std::mutex> g(mu_);
    std::fprintf(stderr, "\r\033[Kobserving targets: %zu/%zu", done, total);
    if (done == total) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }

 private:
  std::mutex mu_;
};

// Structured lines: every step at debug, every 10% (and the last) at info.
class LogProgress : public Progress {
 public:
  void step(const std::string& target, size_t done, size_t total, const std::string& what) override {
    spdlog::debug("target={} step={}/{} {}", target, done, total, what);
    size_t tenth = std::max<size_t>(1, total / 10);
    if (done % tenth == 0 || done == total) spdlog::info("target={} progress={}/{}", target, done, total);
  }
  void note(const std::string& target, const std::string& message) override {
    spdlog::info("target={} {}", target, message);
  }
  void targets(size_t done, size_t total, const std::string& target) override {
    spdlog::debug("target={} observed ({}/{})", target, done, total);
  }
};

}  // namespace

std::unique_ptr<Progress> makeProgress(const OutputOptions& o) {
  if (o.verbosity < 0) return std::make_unique<NullProgress>();
  if (isatty(STDERR_FILENO) && o.logFormat != "json") return std::make_unique<TtyProgress>();
  return std::make_unique<LogProgress>();
}

}  // namespace vnetplan::cli
