// A shared library opened on first use (dlopen) rather than by the loader at start-up.
//
// libnftables and libssh bring a dozen libraries between them (libgmp, libjansson, libxtables, libmnl, libnftnl;
// the Kerberos libraries, libkeyutils, libresolv). Mapping and relocating those at every start was most of a short
// run's start-up, yet most runs never call them: a plan of bridges on a host without vnetplan's nftables tables,
// every run without an ESXi target. The providers that need one bind the functions they call through a table
// made with VNP_DYNLIB_TABLE, and report the library's absence as an error of the operation that needed it.
#pragma once
#include <string>

namespace vnetplan {

class DynLib {
 public:
  // Opens `soname` (RTLD_NOW | RTLD_LOCAL). It is never closed: the functions bound from it live as long as the
  // process.
  explicit DynLib(const char* soname);
  // Binds `fn` to the symbol `name`; after a failure (this one or an earlier one) `fn` is nullptr.
  template <typename F>
  void bind(F*& fn, const char* name) {
    fn = reinterpret_cast<F*>(symbol(name));
  }
  // "" when the library and every bound symbol were found; else what went wrong, naming the library.
  const std::string& error() const { return error_; }

 private:
  void* symbol(const char* name);
  std::string soname_, error_;
  void* handle_ = nullptr;
};

}  // namespace vnetplan

// A table of function pointers with the names and types of the library's own declarations, bound once:
//   #define NFT_FUNCTIONS(X) X(nft_ctx_new) X(nft_ctx_free)
//   VNP_DYNLIB_TABLE(Nft, "libnftables.so.1", NFT_FUNCTIONS)
// declares `struct Nft { decltype(&::nft_ctx_new) nft_ctx_new; ...; std::string error; }` and
// `const Nft& Nft::get()`, which opens the library on its first call (thread-safe) and keeps the table.
#define VNP_DYNLIB_MEMBER(f) decltype(&::f) f = nullptr;
#define VNP_DYNLIB_BIND(f) lib.bind(t.f, #f);
#define VNP_DYNLIB_TABLE(Name, soname, FUNCTIONS) \
  struct Name {                                   \
    FUNCTIONS(VNP_DYNLIB_MEMBER)                  \
    std::string error;                            \
    static const Name& get() {                    \
      static const Name table = [] {              \
        Name t;                                   \
        ::vnetplan::DynLib lib(soname);           \
        FUNCTIONS(VNP_DYNLIB_BIND)                \
        t.error = lib.error();                    \
        return t;                                 \
      }();                                        \
      return table;                               \
    }                                             \
  };
