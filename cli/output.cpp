#include "cli/output.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <mutex>

namespace vnetplan::cli {

namespace {

bool gJsonLogs = false;
std::mutex gAddressesMu;
std::map<std::string, std::string> gAddresses;

void addAddress(nlohmann::json& line) {
  if (!line.contains("target") || line.contains("address")) return;
  std::lock_guard<std::mutex> lock(gAddressesMu);
  auto it = gAddresses.find(line["target"].get<std::string>());
  if (it != gAddresses.end() && !it->second.empty()) line["address"] = it->second;
}

std::string utcNowMillis(std::chrono::system_clock::time_point now) {
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// One JSON object per line: {"time", "level", "target", "address", "step", ..., "message"}. Log calls put their
// fields first as key=value words ("target=hv1 step=3/10 create bridge br0"); those become members, the rest is
// the message. Built with a JSON library, so a message with quotes, newlines or invalid UTF-8 is still one valid
// line.
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json line = nlohmann::json::object();
    line["time"] = utcNowMillis(msg.time);
    line["level"] = std::string(spdlog::level::to_string_view(msg.level).data(),
                                spdlog::level::to_string_view(msg.level).size());
    std::string text(msg.payload.data(), msg.payload.size());
    static const char* kFields[] = {"target", "address", "step", "progress", "outcome", "generation"};
    for (;;) {
      size_t eq = text.find('='), sp = text.find(' ');
      if (eq == std::string::npos || (sp != std::string::npos && eq > sp)) break;
      const std::string key = text.substr(0, eq);
      if (std::find(std::begin(kFields), std::end(kFields), key) == std::end(kFields)) break;
      const std::string value = text.substr(eq + 1, sp == std::string::npos ? std::string::npos : sp - eq - 1);
      line[key] = value;
      text = sp == std::string::npos ? "" : text.substr(sp + 1);
    }
    line["message"] = text;
    addAddress(line);
    const std::string out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLineFormatter>(); }
};

}  // namespace

bool jsonLogs() { return gJsonLogs; }

void setLogAddresses(std::map<std::string, std::string> addresses) {
  std::lock_guard<std::mutex> lock(gAddressesMu);
  gAddresses = std::move(addresses);
}

void writeJsonLine(nlohmann::json fields, const char* level) {
  nlohmann::json line{{"time", utcNowMillis(std::chrono::system_clock::now())}};
  if (!fields.contains("level")) line["level"] = level;
  line.update(fields);
  addAddress(line);
  const std::string out = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(out.data(), 1, out.size(), stderr);
  std::fflush(stderr);
}

void setupLogging(const OutputOptions& o) {
  gJsonLogs = o.logFormat == "json";
  spdlog::drop("vnetplan");  // a second run in one process (tests) sets it up afresh
  auto logger = spdlog::stderr_logger_mt("vnetplan");
  if (o.logFormat == "json")
    logger->set_formatter(std::make_unique<JsonLineFormatter>());
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
