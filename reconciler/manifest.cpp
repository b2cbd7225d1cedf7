#include "reconciler/manifest.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

#include "base/fd.h"
#include "base/parallel.h"

namespace vnetplan {

namespace fs = std::filesystem;

std::string pointerEscape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

SourceLoc Document::at(const std::string& pointer) const {
  std::string p = pointer;
  while (true) {
    auto it = valueLocs.find(p);
    if (it != valueLocs.end()) return it->second;
    if (p.empty()) return loc;
    auto slash = p.rfind('/');
    p = slash == std::string::npos ? "" : p.substr(0, slash);
  }
}

SourceLoc Document::keyAt(const std::string& pointer) const {
  auto it = keyLocs.find(pointer);
  return it != keyLocs.end() ? it->second : at(pointer);
}

namespace {

bool allOf(const std::string& s, size_t from, bool (*pred)(char)) {
  if (from >= s.size()) return false;
  for (size_t i = from; i < s.size(); ++i)
    if (!pred(s[i])) return false;
  return true;
}
bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isOct(char c) { return c >= '0' && c <= '7'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool isCoreFloat(const std::string& s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t intDigits = 0, fracDigits = 0;
  while (i < s.size() && isDigit(s[i])) ++i, ++intDigits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && isDigit(s[i])) ++i, ++fracDigits;
  }
  if (intDigits == 0 && fracDigits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t expDigits = 0;
    while (i < s.size() && isDigit(s[i])) ++i, ++expDigits;
    if (expDigits == 0) return false;
  }
  return i == s.size();
}

// YAML 1.2 core schema resolution for plain scalars (null/~ arrive as OnNull).
Json resolvePlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  const char c = s[0];
  if (!(isDigit(c) || c == '-' || c == '+' || c == '.')) return s;
  const size_t sign = (c == '-' || c == '+') ? 1 : 0;
  errno = 0;
  if (allOf(s, sign, isDigit)) {
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE) return s;  // out of range: stays text, the schema reports the type
    return static_cast<int64_t>(v);
  }
  if (s.size() > 2 && s[0] == '0' && s[1] == 'o' && allOf(s, 2, isOct)) {
    long long v = std::strtoll(s.c_str() + 2, nullptr, 8);
    return errno == ERANGE ? Json(s) : Json(static_cast<int64_t>(v));
  }
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x' && allOf(s, 2, isHex)) {
    long long v = std::strtoll(s.c_str() + 2, nullptr, 16);
    return errno == ERANGE ? Json(s) : Json(static_cast<int64_t>(v));
  }
  if (isCoreFloat(s)) {
    double d = std::strtod(s.c_str(), nullptr);
    if (std::isfinite(d)) return d;
  }
  return s;
}

// Builds one JSON document per YAML document straight from yaml-cpp's parser events (no node tree), with
// the location of every value and key, the limits of LoadLimits, and duplicate-key detection.
class JsonBuilder : public YAML::EventHandler {
 public:
  // `firstLine`: the line of the text where this chunk starts (chunks of one file are parsed in parallel).
  JsonBuilder(const std::string& name, Diagnostics& diags, const LoadLimits& limits, int firstLine = 0)
      : name_(name), diags_(diags), limits_(limits), lineOffset_(firstLine) {}

  // The document just finished (nullopt when it was empty or refused).
  std::optional<Document> take() {
    std::optional<Document> out;
    if (!aborted_ && !root_.is_null()) {
      doc_.body = std::move(root_);
      out = std::move(doc_);
    }
    return out;
  }
  bool aborted() const { return aborted_; }
  int documentsSeen() const { return index_; }
  bool stalled() const { return stalled_; }
  const SourceLoc& documentLoc() const { return doc_.loc; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    // yaml-cpp can report a new document again and again without consuming input (e.g. a stray ',' at
    // the start of a stream): a document must start further on than the previous one.
    stalled_ = index_ > 0 && mark.pos <= lastStart_;
    lastStart_ = mark.pos;
    doc_ = Document{};
    doc_.file = name_;
    doc_.index = index_++;
    doc_.loc = loc(mark);
    root_ = nullptr;
    stack_.clear();
    anchors_.clear();
    nodes_ = 0;
    aborted_ = false;
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { value(mark, nullptr, anchor, 1); }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      error(mark, "alias to an unknown anchor", "yaml-syntax");
      return;
    }
    // An alias copies its anchored value: count every node of it, which is what stops anchor bombs.
    value(mark, it->second.value, 0, it->second.nodes);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& text) override {
    if (keyExpected()) {
      onKey(mark, text);
      return;
    }
    Json v;
    if (tag == "!" || tag == "tag:yaml.org,2002:str") {
      v = text;
    } else if (tag == "?" || tag.empty() || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:bool" ||
               tag == "tag:yaml.org,2002:float" || tag == "tag:yaml.org,2002:null") {
      v = resolvePlainScalar(text);
    } else {
      error(mark, "unsupported YAML tag '" + tag + "'", "yaml-tag");
      v = text;
    }
    value(mark, std::move(v), anchor, 1);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, Json::array(), anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, Json::object(), anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Frame {
    Json value;
    std::string ptr;
    YAML::anchor_t anchor = 0;
    size_t nodesAtStart = 0;
    bool keyNext = true;  // maps: the next scalar is a key
    std::string key;
    bool skipValue = false;  // the key was refused (duplicate, not a scalar): drop its value
    size_t index = 0;        // sequences: the next item's index
  };
  struct Anchored {
    Json value;
    size_t nodes = 0;
  };

  SourceLoc loc(const YAML::Mark& m) const {
    if (m.line < 0) return doc_.loc;
    return SourceLoc{name_, m.line + 1 + lineOffset_, m.column + 1};
  }
  void error(const YAML::Mark& m, const std::string& msg, const char* code) { diags_.error(loc(m), msg, code); }

  bool keyExpected() const { return !stack_.empty() && stack_.back().value.is_object() && stack_.back().keyNext; }

  void onKey(const YAML::Mark& mark, const std::string& key) {
    Frame& f = stack_.back();
    f.keyNext = false;
    f.key = key;
    f.skipValue = false;
    const std::string childPtr = f.ptr + "/" + pointerEscape(key);
    if (f.value.contains(key)) {
      error(mark, "duplicate key '" + key + "' (first at " + doc_.keyAt(childPtr).str() + ")", "yaml-duplicate-key");
      f.skipValue = true;
      return;
    }
    doc_.keyLocs.emplace(childPtr, loc(mark));
  }

  // Where the next value goes.
  std::string childPointer() {
    if (stack_.empty()) return "";
    Frame& f = stack_.back();
    if (f.value.is_object()) return f.ptr + "/" + pointerEscape(f.key);
    return f.ptr + "/" + std::to_string(f.index);
  }

  bool count(const YAML::Mark& mark, size_t n) {
    if (aborted_) return false;
    nodes_ += n;
    if (nodes_ > limits_.maxNodesPerDocument) {
      error(mark, "document expands to more than " + std::to_string(limits_.maxNodesPerDocument) +
                      " nodes (YAML alias/anchor bomb?); refusing to read it",
            "yaml-too-large");
      aborted_ = true;
      return false;
    }
    return true;
  }

  // A mapping key that is a sequence/map, or an alias used as a key.
  bool refuseComplexKey(const YAML::Mark& mark) {
    if (!keyExpected()) return false;
    error(mark, "mapping keys must be plain strings", "yaml-key");
    Frame& f = stack_.back();
    f.keyNext = false;
    f.skipValue = true;
    return true;
  }

  void value(const YAML::Mark& mark, Json v, YAML::anchor_t anchor, size_t nodes) {
    if (!count(mark, nodes)) return;
    if (refuseComplexKey(mark)) return;
    if (stack_.empty()) doc_.loc = loc(mark);  // a document is where its content starts
    const std::string ptr = childPointer();
    doc_.valueLocs.emplace(ptr, loc(mark));
    if (anchor) anchors_[anchor] = Anchored{v, nodes};
    attach(std::move(v));
  }

  void attach(Json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& f = stack_.back();
    if (f.value.is_object()) {
      if (!f.skipValue) f.value[f.key] = std::move(v);
      f.keyNext = true;
    } else {
      f.value.push_back(std::move(v));
      ++f.index;
    }
  }

  void open(const YAML::Mark& mark, Json container, YAML::anchor_t anchor) {
    if (!count(mark, 1)) {
      ++ignoredDepth_;
      return;
    }
    if (ignoredDepth_ > 0) {
      ++ignoredDepth_;
      return;
    }
    if (stack_.size() >= limits_.maxDepth) {
      error(mark, "document nests deeper than " + std::to_string(limits_.maxDepth) + " levels", "yaml-too-deep");
      aborted_ = true;
      ++ignoredDepth_;
      return;
    }
    if (stack_.empty()) doc_.loc = loc(mark);
    bool complexKey = refuseComplexKey(mark);
    const std::string ptr = complexKey ? std::string("/(key)") : childPointer();
    if (!complexKey) doc_.valueLocs.emplace(ptr, loc(mark));
    stack_.push_back(Frame{std::move(container), ptr, anchor, nodes_});
    stack_.back().skipValue = complexKey;  // reused as "discard this whole container"
  }

  void close() {
    if (ignoredDepth_ > 0) {
      --ignoredDepth_;
      return;
    }
    if (stack_.empty()) return;
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    const bool discard = f.skipValue && f.ptr == "/(key)";
    if (f.anchor) anchors_[f.anchor] = Anchored{f.value, nodes_ - f.nodesAtStart + 1};
    if (!discard) attach(std::move(f.value));
  }

  const std::string& name_;
  Diagnostics& diags_;
  const LoadLimits& limits_;
  Document doc_;
  Json root_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Anchored> anchors_;
  size_t nodes_ = 0;
  size_t ignoredDepth_ = 0;
  int lineOffset_ = 0;
  int lastStart_ = -1;
  bool stalled_ = false;
  int index_ = 0;
  bool aborted_ = false;
};

// Parses one chunk of a file: whole documents, starting at line `firstLine` (0-based) of the file.
struct ChunkResult {
  std::vector<Document> docs;
  int documentsSeen = 0;  // YAML documents in the chunk, empty ones included
};
ChunkResult parseChunk(std::string_view text, int firstLine, const std::string& name, Diagnostics& diags,
                       const LoadLimits& limits) {
  std::vector<Document> docs;
  std::istringstream in{std::string(text)};
  JsonBuilder builder(name, diags, limits, firstLine);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
      if (builder.stalled()) {
        diags.error(builder.documentLoc(), "YAML syntax error: unexpected content where a document should start",
                    "yaml-syntax");
        break;
      }
      auto doc = builder.take();
      if (!doc) continue;  // empty document (e.g. a trailing ---) or refused
      if (!doc->body.is_object()) {
        diags.error(doc->loc, "a manifest document must be a mapping with apiVersion, kind, metadata and spec",
                    "manifest-shape");
        continue;
      }
      docs.push_back(std::move(*doc));
    }
  } catch (const YAML::Exception& e) {
    // The documents before the broken one are kept; nothing after it in this chunk can be trusted.
    SourceLoc loc{name, e.mark.line >= 0 ? e.mark.line + 1 + firstLine : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0};
    diags.error(loc, "YAML syntax error: " + e.msg, "yaml-syntax");
  } catch (const std::exception& e) {
    diags.error(SourceLoc{name, 0, 0}, std::string("YAML error: ") + e.what(), "yaml-syntax");
  }
  return {std::move(docs), builder.documentsSeen()};
}

// Splits a large stream into up to `parts` chunks of whole documents, at "---" lines in column 0. That is a
// safe boundary: YAML forbids a document marker inside any content, so it always starts a new document.
struct Chunk {
  std::string_view text;
  int firstLine = 0;
};
std::vector<Chunk> splitDocuments(std::string_view text, size_t parts) {
  std::vector<Chunk> chunks;
  const size_t target = text.size() / std::max<size_t>(parts, 1) + 1;
  size_t start = 0, line = 0, startLine = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view l = text.substr(pos, eol - pos);
    bool marker = l.substr(0, 3) == "---" && (l.size() == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r');
    if (marker && pos - start >= target && chunks.size() + 1 < parts) {
      chunks.push_back({text.substr(start, pos - start), static_cast<int>(startLine)});
      start = pos;
      startLine = line;
    }
    pos = eol + 1;
    ++line;
  }
  chunks.push_back({text.substr(start), static_cast<int>(startLine)});
  return chunks;
}

std::vector<Document> parseText(const std::string& text, const std::string& name, Diagnostics& diags,
                                const LoadLimits& limits) {
  if (text.find('\0') != std::string::npos) {
    diags.error(SourceLoc{name, 1, 1}, "file contains NUL bytes; not a YAML text file", "yaml-binary");
    return {};
  }
  // Files are parsed on every core unless they are small: a chunk of 16 KiB (about 70 documents) takes
  // milliseconds on real hardware and far longer under emulation, a thread well under a millisecond.
  constexpr size_t kParallelBytes = 32 * 1024;
  const size_t parts = static_cast<size_t>(parallelWorkers(text.size(), kParallelBytes));
  std::vector<Chunk> chunks = splitDocuments(text, parts);
  std::vector<ChunkResult> results(chunks.size());
  std::vector<Diagnostics> chunkDiags(chunks.size());
  std::vector<std::thread> workers;
  for (size_t i = 1; i < chunks.size(); ++i)
    workers.emplace_back([&, i] { results[i] = parseChunk(chunks[i].text, chunks[i].firstLine, name, chunkDiags[i], limits); });
  results[0] = parseChunk(chunks[0].text, chunks[0].firstLine, name, chunkDiags[0], limits);
  for (auto& w : workers) w.join();
  std::vector<Document> docs;
  int offset = 0;  // document numbers count across chunks
  for (size_t i = 0; i < chunks.size(); ++i) {
    diags.append(chunkDiags[i]);
    for (auto& d : results[i].docs) {
      d.index += offset;
      docs.push_back(std::move(d));
    }
    offset += results[i].documentsSeen;
  }
  return docs;
}

bool isManifestFile(const fs::path& p) {
  auto ext = p.extension().string();
  return ext == ".yaml" || ext == ".yml";
}

}  // namespace

std::vector<Document> loadManifestText(const std::string& text, const std::string& name, Diagnostics& diags,
                                       const LoadLimits& limits) {
  if (text.size() > limits.maxFileBytes) {
    diags.error(SourceLoc{name, 0, 0},
                "file is larger than " + std::to_string(limits.maxFileBytes) + " bytes; refusing to read it",
                "file-too-large");
    return {};
  }
  return parseText(text, name, diags, limits);
}

// Reads a regular file, at most `limit` + 1 bytes (so a file growing while read is still caught).
std::optional<std::string> readBounded(const std::string& f, size_t limit, Diagnostics& diags) {
  std::error_code ec;
  fs::file_status st = fs::status(f, ec);
  if (ec) {
    diags.error(SourceLoc{f, 0, 0}, "cannot read: " + ec.message(), "manifest-path");
    return std::nullopt;
  }
  if (!fs::is_regular_file(st)) {
    diags.error(SourceLoc{f, 0, 0}, "not a regular file (a FIFO, device or socket is never read as a manifest)",
                "manifest-path");
    return std::nullopt;
  }
  std::ifstream in(f, std::ios::binary);
  if (!in) {
    diags.error(SourceLoc{f, 0, 0}, std::string("cannot open: ") + errnoText(errno), "manifest-path");
    return std::nullopt;
  }
  std::string data;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > limit) {
      diags.error(SourceLoc{f, 0, 0}, "file is larger than " + std::to_string(limit) + " bytes; refusing to read it",
                  "file-too-large");
      return std::nullopt;
    }
  }
  return data;
}

std::vector<ManifestSource> readManifestSources(const std::vector<std::string>& paths, Diagnostics& diags,
                                                const LoadLimits& limits) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      diags.error(SourceLoc{p, 0, 0}, ec && ec != std::errc::no_such_file_or_directory ? "cannot read: " + ec.message()
                                                                                       : "no such file or directory",
                  "manifest-path");
      continue;
    }
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (!isManifestFile(it->path())) continue;
        std::error_code sec;
        if (it->is_directory(sec)) continue;  // a directory named *.yaml
        // Regular files, and anything else named *.yaml (a dangling or looping link, a FIFO) so it gets reported.
        found.push_back(it->path().string());
      }
      if (ec) diags.error(SourceLoc{p, 0, 0}, "cannot read directory: " + ec.message(), "manifest-path");
      std::sort(found.begin(), found.end());
      if (found.empty()) diags.warning(SourceLoc{p, 0, 0}, "directory holds no *.yaml or *.yml files", "manifest-path");
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);
    }
  }
  std::vector<ManifestSource> sources;
  std::set<std::string> seen;
  for (const auto& f : files) {
    std::error_code ec;
    auto canonical = fs::weakly_canonical(f, ec);
    if (!ec && !seen.insert(canonical.string()).second) continue;  // same file named twice
    auto text = readBounded(f, limits.maxFileBytes, diags);
    if (!text) continue;
    sources.push_back({f, std::move(*text)});
  }
  return sources;
}

std::vector<Document> parseManifestSources(const std::vector<ManifestSource>& sources, Diagnostics& diags,
                                           const LoadLimits& limits) {
  std::vector<Document> docs;
  for (const auto& src : sources) {
    const size_t errorsBefore = diags.errorCount();
    auto parsed = parseText(src.text, src.file, diags, limits);
    if (parsed.empty() && diags.errorCount() == errorsBefore)
      diags.warning(SourceLoc{src.file, 0, 0}, "holds no documents", "manifest-empty");
    for (auto& d : parsed) docs.push_back(std::move(d));
  }
  if (docs.empty() && !sources.empty() && !diags.hasErrors())
    diags.error(SourceLoc{sources.front().file, 0, 0}, "no documents in the manifests: nothing to validate or plan",
                "manifest-empty");
  return docs;
}

std::vector<Document> loadManifests(const std::vector<std::string>& paths, Diagnostics& diags,
                                    const LoadLimits& limits) {
  return parseManifestSources(readManifestSources(paths, diags, limits), diags, limits);
}

}  // namespace vnetplan
