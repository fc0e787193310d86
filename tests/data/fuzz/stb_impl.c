/* stb_impl.c — compiles stb_image from its header into the fuzzer only, so
 * that the decoders themselves are instrumented (the library links Debian's
 * uninstrumented libstb instead). Not part of the library build. */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
