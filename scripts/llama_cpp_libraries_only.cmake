# Included by CMake after every project() call while pip builds llama-cpp-python
# (CMAKE_PROJECT_INCLUDE, set in scripts/_venv.sh).
#
# Forge loads only libllama and ggml through the Python bindings. llama-cpp-python
# forces llama.cpp's "common" helper library on (with its HTTP client), installs it
# outside the package and never loads it; compiling it is half of the whole build.
# Turning it back off once llama.cpp's own project() has run leaves exactly the
# libraries the bindings load.
if(PROJECT_NAME STREQUAL "llama.cpp")
    set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
endif()
