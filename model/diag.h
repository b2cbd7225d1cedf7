// Diagnostics: every problem found in a run, each with file:line:col, reported together.
#pragma once
#include <set>
#include <string>
#include <vector>

namespace vnetplan {

struct SourceLoc {
  std::string file;
  int line = 0;  // 1-based; 0 = unknown
  int col = 0;   // 1-based
  std::string str() const;  // "file:line:col" (or just "file", or "<unknown>")
};

enum class Severity { Error, Warning };

struct Diagnostic {
  Severity severity = Severity::Error;
  SourceLoc loc;
  std::string message;
  std::string code;  // stable id, e.g. "schema", "unknown-field", "lint/bond-mode"
};

class Diagnostics {
 public:
  void error(SourceLoc loc, std::string message, std::string code = "");
  void warning(SourceLoc loc, std::string message, std::string code = "");
  void add(Diagnostic d);  // an exact duplicate (severity, place, message, code) is dropped
  void append(const Diagnostics& other);
  bool hasErrors() const;
  size_t errorCount() const;
  size_t warningCount() const;
  const std::vector<Diagnostic>& items() const { return items_; }
  // Sorted by file, line, col; one per line: "file:line:col: error: message".
  std::string render(bool color = false) const;

 private:
  std::vector<Diagnostic> items_;
  std::set<std::string> seen_;
};

// "did you mean" helper: the closest candidate within a small edit distance, or "".
std::string closestMatch(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace vnetplan
