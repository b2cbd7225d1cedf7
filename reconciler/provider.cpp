#include "reconciler/provider.h"

#include <cstdlib>
#include <sstream>


namespace vnetplan {

TargetSession::BatchResult TargetSession::applyBatch(const std::vector<Step>& steps,
                                                   const std::function<void(size_t)>& done) {
  for (size_t i = 0; i < steps.size(); ++i) {
    Status st = apply(steps[i]);
    if (!st.ok()) return {st, i};
    if (done) done(i);
  }
  return {};
}

std::string Provider::describe(const Step& step, const Target& target) const {
  std::ostringstream out;
  out << stepActionName(step.action) << " " << step.addr.str();
  if (step.action == StepAction::Update && !step.changed.empty()) {
    out << " (";
    for (size_t i = 0; i < step.changed.size(); ++i) out << (i ? ", " : "") << step.changed[i];
    out << ")";
  }
  out << " on target " << target.name;
  return out.str();
}

void ProviderRegistry::add(std::unique_ptr<Provider> p) { providers_.push_back(std::move(p)); }

Provider* ProviderRegistry::find(std::string_view name) const {
  for (const auto& p : providers_)
    if (p->name() == name) return p.get();
  return nullptr;
}

std::vector<std::string> ProviderRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& p : providers_) out.emplace_back(p->name());
  return out;
}

static long envLong(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return (end && *end == '\0' && n > 0) ? n : 0;
}

FaultInjection FaultInjection::fromEnv() {
  FaultInjection f;
  f.failAtStep = envLong("VNETPLAN_FAIL_AT_STEP");
  f.slowStepMs = envLong("VNETPLAN_SLOW_STEP_MS");
  f.failAfterCommit = envLong("VNETPLAN_FAIL_AFTER_COMMIT") > 0;
  f.failAtFlush = envLong("VNETPLAN_FAIL_AT_FLUSH") > 0;
  return f;
}

}  // namespace vnetplan
