// Test double of the Arduino mbed core's PDM library (libraries/PDM, nRF52 build): the same class
// and methods. Audio comes from what NKA_PDM names (a WAV file, zeros, a constant, nothing), in
// blocks of getBufferSize() bytes at the pace of the double's clock; see README.md here.
#ifndef NKA_PDM_H
#define NKA_PDM_H

#include <Arduino.h>

class PDMClass {
  public:
    PDMClass(int dinPin, int clkPin, int pwrPin);
    virtual ~PDMClass() {}

    // 1 for 1 channel at 16000 or 41667 Hz (and 2 channels), 0 otherwise -- like the core, it
    // never checks that a microphone is there.
    int begin(int channels, int sampleRate);
    void end();

    virtual int available();
    virtual int read(void *buffer, size_t size);

    void onReceive(void (*)(void));

    void setGain(int gain);
    void setBufferSize(int bufferSize);
    size_t getBufferSize();

  private:
    int _dinPin;
    int _clkPin;
    int _pwrPin;
    int _gain;
    void (*_onReceive)(void);
};

extern PDMClass PDM;

#endif // NKA_PDM_H
