// The one piece of C++ in thumbfs: a frame that catches what libheif throws.
//
// libheif is C++ behind a C API, and 1.15 lets some exceptions out of it (std::system_error
// when a thread cannot be started, std::bad_alloc). Rust cannot catch a C++ exception, so one
// reaching a Rust frame aborts the whole daemon. Every libheif call runs inside
// thumbfs_heif_guard, which turns an exception into a return value (src/codec/heif/ffi.rs).

#include <cxxabi.h>
#include <stdexcept>

extern "C" {

// Runs call(data); 0 when it returned, 1 when it threw.
int thumbfs_heif_guard(void (*call)(void*), void* data) {
  try {
    call(data);
    return 0;
  } catch (abi::__forced_unwind&) {
    // Thread cancellation must unwind on (glibc aborts if it is swallowed).
    throw;
  } catch (...) {
    return 1;
  }
}

// Throws: lets a test prove that an exception stops at the guard.
void thumbfs_heif_guard_test_throw(void*) {
  throw std::runtime_error("thumbfs guard test");
}

}
