#include "model/diag.h"

#include <algorithm>
#include <sstream>
#include <tuple>

namespace vnetplan {

std::string SourceLoc::str() const {
  if (file.empty()) return "<unknown>";
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col > 0 ? col : 1);
}

// The same finding at the same place is said once (a value many resources inherit, a fanned-out resource).
void Diagnostics::add(Diagnostic d) {
  std::string key = std::to_string(static_cast<int>(d.severity)) + '\x1f' + d.loc.str() + '\x1f' + d.code + '\x1f' +
                    d.message;
  if (!seen_.insert(std::move(key)).second) return;
  items_.push_back(std::move(d));
}

void Diagnostics::error(SourceLoc loc, std::string message, std::string code) {
  add({Severity::Error, std::move(loc), std::move(message), std::move(code)});
}

void Diagnostics::warning(SourceLoc loc, std::string message, std::string code) {
  add({Severity::Warning, std::move(loc), std::move(message), std::move(code)});
}

void Diagnostics::append(const Diagnostics& other) {
  for (const auto& d : other.items_) add(d);
}

bool Diagnostics::hasErrors() const { return errorCount() > 0; }

size_t Diagnostics::errorCount() const {
  return static_cast<size_t>(
      std::count_if(items_.begin(), items_.end(), [](const Diagnostic& d) { return d.severity == Severity::Error; }));
}

size_t Diagnostics::warningCount() const { return items_.size() - errorCount(); }

std::string Diagnostics::render(bool color) const {
  std::vector<Diagnostic> sorted = items_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.loc.file, a.loc.line, a.loc.col) < std::tie(b.loc.file, b.loc.line, b.loc.col);
  });
  std::ostringstream out;
  for (const auto& d : sorted) {
    bool err = d.severity == Severity::Error;
    const char* label = err ? "error" : "warning";
    out << d.loc.str() << ": ";
    if (color) out << (err ? "\033[31m" : "\033[33m");
    out << label;
    if (color) out << "\033[0m";
    out << ": " << d.message;
    if (!d.code.empty()) out << " [" << d.code << "]";
    out << "\n";
  }
  return out.str();
}

static size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = (std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                     std::tolower(static_cast<unsigned char>(b[j - 1])))
                        ? 0
                        : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closestMatch(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  // Short words get one edit, or swapped letters ("mut" -> "mtu"): "<<" (a YAML merge key) is not "up".
  const bool shortWord = word.size() <= 3;
  size_t bestDist = (shortWord ? 2 : std::max<size_t>(2, word.size() / 3)) + 1;
  auto sorted = [](std::string s) {
    std::sort(s.begin(), s.end());
    return s;
  };
  for (const auto& c : candidates) {
    size_t d = editDistance(word, c);
    if (shortWord && d > 1 && sorted(word) != sorted(c)) continue;
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best;
}

}  // namespace vnetplan
