/* stb_image_impl.c — the stb_image decoder compiled into fuzz_image with the
 * fuzzer's coverage instrumentation and the sanitizers (make fuzz), so that the
 * fuzzer sees and checks the PNG/JPEG/BMP/PNM decoding itself, not only the
 * library's guards; its stbi_* definitions take precedence over libstb's. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
