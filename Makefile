# The two commands of the README, and a few more for developers.
#   make demo      install what is missing, build, run the bundled example
#   make test      install what is missing, build, run the whole test suite (CTest)
#   make test-zoo  also export the torchvision zoo with PyTorch and compare every model
#   make asan      the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz      replay every fuzz harness's corpus and fuzz each for FUZZ_SECONDS
# Everything is built under build/ (build-asan/ for the sanitizer build).

BUILD     ?= build
JOBS      ?= 2
CMAKE_OPTS ?=
FUZZ_SECONDS ?= 30

# Debian packages: to build, and (python) to make reference data and the zoo.
BUILD_DEPS := gcc make cmake protobuf-c-compiler libprotobuf-c-dev libonnx-dev libopenblas-dev libopenblas-openmp-dev libdnnl-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev
ZOO_DEPS   := python3 python3-torch python3-torchvision python3-onnx python3-numpy
FUZZ_DEPS  := clang libclang-rt-14-dev

.PHONY: all build deps zoo-deps fuzz-deps demo test test-zoo asan fuzz clean

all: build

# Install missing packages when root; otherwise print the exact command and stop.
define ensure_packages
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages; run:  sudo apt-get install -y" $$missing; exit 1; \
	  fi; \
	fi
endef

deps:
	$(call ensure_packages,$(BUILD_DEPS))

zoo-deps:
	$(call ensure_packages,$(ZOO_DEPS))

fuzz-deps:
	$(call ensure_packages,$(FUZZ_DEPS))

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_OPTS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	./$(BUILD)/onnxtune dump models/digits/digits_cnn.onnx --batch 32 --summary
	ONNXTUNE=$(BUILD)/onnxtune OUT=$(BUILD) sh models/digits/demo.sh

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-zoo: build zoo-deps
	/usr/bin/python3 models/export.py --out $(BUILD)/zoo
	ONNXTUNE=$(BUILD)/onnxtune tests/zoo.sh $(BUILD)/zoo
	/usr/bin/python3 tests/ref/make_train_ref.py --zoo $(BUILD)/zoo
	ONNXTUNE=$(BUILD)/onnxtune ONNXTUNE_TRAIN_REF=$(BUILD)/zoo/train_ref $(BUILD)/test_train_e2e

asan:
	$(MAKE) test BUILD=build-asan CMAKE_OPTS="-DONNXTUNE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo"

fuzz: deps fuzz-deps
	tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz
