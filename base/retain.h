// Objects a one-shot run frees just before it exits. A no-op plan of 3,000 resources spends about a fifth of its
// CPU time freeing the desired state, the observation and the plan, all of which the kernel reclaims for free a
// moment later. A one-shot process (the CLI) says so once; then retainUntilExit() keeps what it is given until
// the process ends. Elsewhere (serve, tests) it destroys the object at once, as scope exit would have.
#pragma once
#include <memory>
#include <type_traits>
#include <utility>

namespace vnetplan {

void setOneShotProcess(bool oneShot);
bool oneShotProcess();
// Keeps `p` alive until the process exits (reachable, so leak checkers do not report it).
void keepUntilExit(std::shared_ptr<void> p);

template <class T>
void retainUntilExit(T&& obj) {
  if (!oneShotProcess()) return;  // `obj` is destroyed by its owner, as usual
  keepUntilExit(std::make_shared<std::decay_t<T>>(std::forward<T>(obj)));
}

}  // namespace vnetplan
