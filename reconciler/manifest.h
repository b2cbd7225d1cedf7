// Manifest loading: files and directories -> documents (JSON bodies with a source-location index).
//
// YAML is converted once, at the edge, into JSON using the YAML 1.2 core schema for plain scalars
// (true/false, null/~, integers, floats; quoted scalars stay strings). Every value and every mapping key
// keeps its file:line:col so that schema, semantic and lint errors can point at it.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "model/diag.h"
#include "model/model.h"

namespace vnetplan {

struct Document {
  std::string file;
  int index = 0;  // 0-based document number within the file
  Json body;
  SourceLoc loc;  // where the document starts
  std::map<std::string, SourceLoc> valueLocs;  // JSON pointer ("/spec/mtu") -> location of the value
  std::map<std::string, SourceLoc> keyLocs;    // JSON pointer ("/spec/mtu") -> location of the key "mtu"
  // Location of the value at `pointer`, or of its nearest ancestor that has one.
  SourceLoc at(const std::string& pointer) const;
  // Location of the key at `pointer` (falls back to at()).
  SourceLoc keyAt(const std::string& pointer) const;
};

struct LoadLimits {
  size_t maxFileBytes = 64u << 20;     // a larger file is refused
  size_t maxNodesPerDocument = 1u << 20;  // alias expansion beyond this is refused (anchor bombs)
  size_t maxDepth = 64;
};

// One manifest file's bytes, as read.
struct ManifestSource {
  std::string file;
  std::string text;
};
// Reads every path (a file, or a directory: every *.yaml / *.yml below it, sorted; a file named twice is read
// once). Problems are added to diags.
std::vector<ManifestSource> readManifestSources(const std::vector<std::string>& paths, Diagnostics& diags,
                                                const LoadLimits& limits = {});
// Parses what readManifestSources read.
std::vector<Document> parseManifestSources(const std::vector<ManifestSource>& sources, Diagnostics& diags,
                                           const LoadLimits& limits = {});

// Reads every path (a file, or a directory: every *.yaml / *.yml below it, sorted). Problems are added to
// diags (each with file:line:col); the documents that could be read are returned.
std::vector<Document> loadManifests(const std::vector<std::string>& paths, Diagnostics& diags,
                                    const LoadLimits& limits = {});
// Parses YAML text as if it were the file `name`.
std::vector<Document> loadManifestText(const std::string& text, const std::string& name, Diagnostics& diags,
                                       const LoadLimits& limits = {});

// Escapes a key for a JSON pointer segment (~0, ~1).
std::string pointerEscape(const std::string& key);

}  // namespace vnetplan
