#include "base/dynlib.h"

#include <dlfcn.h>

namespace vnetplan {

DynLib::DynLib(const char* soname) : soname_(soname) {
  handle_ = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char* why = dlerror();
    error_ = std::string("cannot load ") + soname + (why ? std::string(": ") + why : std::string()) +
             " (install the package that provides it)";
  }
}

void* DynLib::symbol(const char* name) {
  if (!error_.empty()) return nullptr;
  dlerror();
  void* p = dlsym(handle_, name);
  if (!p) error_ = soname_ + " has no function " + name + " (a different version than vnetplan was built for?)";
  return p;
}

}  // namespace vnetplan
