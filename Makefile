# cbcore - one Makefile. `make` builds into build/, binaries in build/bin/.
# See README.md for the targets; `make help` lists them.

PKGS    := jansson librabbitmq libnats libevent libevent_openssl libevent_pthreads lmdb openssl
TESTPKG := cmocka
BUILD   ?= build
CC      ?= cc

MODE_CFLAGS ?= -O2 -g
CFLAGS  += -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Wshadow \
           -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -MMD -MP $(MODE_CFLAGS) \
           -Icommon -Ibroker -Iprojector -Iengine -Iadapters -Iapi -Isla -Itools \
           -DCB_SCHEMA_DIR=\"$(CURDIR)/schemas\" -DCB_TOOLS_DIR=\"$(CURDIR)/tools\" \
           -DCB_RUNTIME_DIR=\"$(CURDIR)/adapters/runtimes\" \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

# Every source of a library folder, except each daemon's main.c.
LIB_SRC := $(filter-out %/main.c,$(wildcard common/*.c broker/*.c projector/*.c engine/*.c adapters/*.c api/*.c sla/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/ui_files.o
UI_FILES := $(wildcard api/ui/*)
LIB     := $(BUILD)/libcb.a

TOOL_SRC := $(wildcard tools/*.c)
BINS     := $(BUILD)/bin/cb $(BUILD)/bin/cb-projector $(BUILD)/bin/cb-adapter $(BUILD)/bin/cb-engine \
            $(BUILD)/bin/cb-api $(BUILD)/bin/cb-sla

UNIT_TESTS  := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c tests/it_*.c tests/helper_*.c)) \
               $(patsubst tests/fuzz/%.c,$(BUILD)/tests/replay_%,$(wildcard tests/fuzz/fuzz_*.c))
TEST_SUPPORT := $(BUILD)/obj/tests/cb_test.o $(BUILD)/obj/tests/cb_stack.o
FUZZ_SECONDS ?= 60

.SECONDARY:
.PHONY: all test unit integration asan tsan fuzz format format-check lint deps demo compose-test clean help

all: deps-check $(BINS) $(UNIT_TESTS)

help:
	@echo "make            build everything into $(BUILD)/ (binaries in $(BUILD)/bin/)"
	@echo "make test       unit tests, then integration tests against real nats-server and rabbitmq-server"
	@echo "make asan       the same tests built with AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "make tsan       ThreadSanitizer: unit tests, broker and engine integration tests"
	@echo "make fuzz       build and briefly run the libFuzzer harnesses (clang)"
	@echo "make format     clang-format the sources; format-check fails on a difference"
	@echo "make lint       the dependency rules between folders, then cppcheck"
	@echo "make deps       install the Debian packages the project needs (apt-get, idempotent)"
	@echo "make compose-test  build the images and run docker-compose.yml for real (podman, root)"

deps:
	@tools/deps.sh

# Install what is missing before a build (no-op when everything is present).
deps-check:
	@tools/deps.sh --check-or-install

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The dashboard's files as C arrays (api/ui.h), remade when one changes.
$(BUILD)/gen/ui_files.c: $(UI_FILES) tools/embed.py
	python3 tools/embed.py $@ api/ui

$(BUILD)/obj/gen/ui_files.o: $(BUILD)/gen/ui_files.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# Made anew each time: `ar r` into an existing archive would keep the object
# of a source file that was moved or deleted (a duplicate symbol at link).
$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/cb: $(TOOL_SRC:%.c=$(BUILD)/obj/%.o) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS)

$(BUILD)/bin/cb-projector: $(BUILD)/obj/projector/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bin/cb-engine: $(BUILD)/obj/engine/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bin/cb-api: $(BUILD)/obj/api/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bin/cb-sla: $(BUILD)/obj/sla/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/bin/cb-adapter: $(BUILD)/obj/adapters/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_SUPPORT) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_SUPPORT) $(LIB) $(LDLIBS) $(shell pkg-config --libs $(TESTPKG))

# Each fuzz harness also builds as a plain program replaying its seeds (make test).
$(BUILD)/tests/replay_%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/replay_main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/tests/fuzz/replay_main.o $(LIB) $(LDLIBS)

$(BUILD)/obj/tests/%.o: CFLAGS += -Itests -DCB_TESTS_DIR=\"$(CURDIR)/tests\" $(shell pkg-config --cflags $(TESTPKG) 2>/dev/null)

test: all
	tests/run.sh $(BUILD)

unit: all
	tests/run.sh $(BUILD) unit

integration: all
	tests/run.sh $(BUILD) integration

asan:
	$(MAKE) BUILD=build/asan MODE_CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" test

# ThreadSanitizer over the unit tests and the integration tests that run the
# threaded parts (broker drivers, engine) on both brokers. TSan maps memory at
# fixed addresses: setarch -R turns address randomization off for the run.
tsan:
	$(MAKE) BUILD=build/tsan MODE_CFLAGS="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" \
		LDFLAGS="-fsanitize=thread" all
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		setarch $$(uname -m) -R tests/run.sh build/tsan unit
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		CB_TEST_ONLY="it_broker it_engine" setarch $$(uname -m) -R tests/run.sh build/tsan integration

fuzz: deps-check
	tests/fuzz/run.sh $(FUZZ_SECONDS)

format:
	clang-format -i $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h')

# The dependency rules between folders (tools/check_layers.py), pyflakes
# over the Python, then cppcheck over every source with every include folder.
lint:
	python3 tools/check_layers.py
	/usr/bin/python3 -m pyflakes $(shell git ls-files --cached --others --exclude-standard '*.py' | grep -v node_modules)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr --suppress=missingIncludeSystem --include=/usr/include/jansson.h \
		-Icommon -Ibroker -Iprojector -Iengine -Iadapters -Iapi -Isla -Itools -Itests \
		$(shell git ls-files '*.c' | grep -v node_modules)

# From a fresh clone: install what is missing, build, run the sample jobs on
# a private dev stack, stop it (tools/demo.sh).
demo: all
	tools/demo.sh

# The compose stack built and run for real with podman (tools/compose-test.sh).
compose-test: all
	tools/compose-test.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
