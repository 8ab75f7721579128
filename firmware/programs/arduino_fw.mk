# arduino_fw and arduino_live_fw (TARGET=host or asan): the Arduino layer, src/*.cpp exactly as
# the board compiles it (protocol mode; live mode with NK_LIVE_MODE=1), linked against the
# Arduino API test double in targets/arduino_host/ instead of the Arduino mbed core. The core's
# own TARGET_NAME and -funsigned-char are defined too, so a clash with them fails here first.
ifneq ($(TARGET),qemu)
ARDUINO_HOST_SRCS := $(sort $(wildcard $(FIRMWARE_DIR)/src/*.cpp)) \
                     $(sort $(wildcard $(FIRMWARE_DIR)/targets/arduino_host/*.cpp)) lib/app/nk_app.c \
                     lib/kws/nk_kws.c
ARDUINO_HOST_FLAGS := -I$(FIRMWARE_DIR)/targets/arduino_host -funsigned-char \
                      -DTARGET_NAME=ARDUINO_NANO33BLE -DNK_TARGET_NAME='"arduino_host"'
ALL_PROGRAMS += arduino_fw arduino_live_fw
arduino_fw_SRCS := $(ARDUINO_HOST_SRCS)
arduino_fw_FLAGS := $(ARDUINO_HOST_FLAGS)
arduino_fw_USES_MODEL := 1
arduino_fw_NO_PLATFORM := 1
arduino_live_fw_SRCS := $(ARDUINO_HOST_SRCS)
arduino_live_fw_FLAGS := $(ARDUINO_HOST_FLAGS) -DNK_LIVE_MODE=1
arduino_live_fw_USES_MODEL := 1
arduino_live_fw_NO_PLATFORM := 1
endif
