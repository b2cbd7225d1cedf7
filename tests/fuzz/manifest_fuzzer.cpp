// libFuzzer target for the whole manifest front end: YAML text -> documents (loadManifestText) -> JSON Schema
// (SchemaValidator::validate) -> desired state (buildDesiredState) -> lint -> provider checks/normalization.
// It is exactly what `vnetplan validate` does for one file, minus reading the file; it never connects to or
// changes a target.
//
// By default the stages are driven here, with one SchemaValidator built once (building it parses the embedded
// schema and compiles its regexes, which would dominate every run). Set VNETPLAN_FUZZ_PIPELINE=1 to go through
// loadDesiredText() instead (slower, but byte-for-byte the CLI's path).
//
// Build and run: tests/fuzz/run.sh [SECONDS]
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cli/providers.h"
#include "model/diag.h"
#include "reconciler/builder.h"
#include "reconciler/lint.h"
#include "reconciler/manifest.h"
#include "reconciler/pipeline.h"
#include "reconciler/planner.h"
#include "reconciler/provider.h"
#include "reconciler/schema_validator.h"

namespace {

using namespace vnetplan;

// Whatever the input, every diagnostic must be renderable and every error must say where it is.
void checkDiagnostics(const Diagnostics& diags) {
  (void)diags.render(false);
  (void)diags.render(true);
  for (const auto& d : diags.items()) {
    if (d.message.empty()) std::abort();  // a diagnostic without a message is useless to the user
    (void)d.loc.str();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool fullPipeline = [] {
    const char* v = std::getenv("VNETPLAN_FUZZ_PIPELINE");
    return v && *v && std::string(v) != "0";
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  Diagnostics diags;

  if (fullPipeline) {
    DesiredState desired = loadDesiredText(text, "fuzz.yaml", builtinProviders(), diags);
    (void)desired;
    checkDiagnostics(diags);
    return 0;
  }

  static const SchemaValidator* validator = new SchemaValidator();  // built once, deliberately never freed
  static const LoadLimits limits = [] {
    LoadLimits l;
    l.maxNodesPerDocument = 1u << 16;
    return l;
  }();
  std::vector<Document> docs = loadManifestText(text, "fuzz.yaml", diags, limits);
  std::vector<Document> valid;
  for (auto& d : docs) {
    (void)d.at("/spec/mtu");
    (void)d.keyAt("/metadata/name");
    if (validator->validate(d, diags)) valid.push_back(std::move(d));
  }
  DesiredState desired = buildDesiredState(valid, diags);
  lint(desired, diags);
  checkWithProviders(desired, builtinProviders(), diags);
  checkDiagnostics(diags);
  return 0;
}
