/*
 * thrust_stand.ino: the thrust stand's microcontroller (Arduino Nano / Uno / Pro Micro, any board with
 * two free digital pins per HX711, one interrupt pin and two analog inputs).
 *
 * Streams the line protocol of calibration/protocol.py over USB serial at 500000 baud, 200 lines/s:
 *
 *   $D,<t_us>,<seq>,<thrust_raw>,<torque_raw>,<rpm>,<voltage_mv>,<current_ma>,<flags>*<CS>
 *
 * raw HX711 counts (tare and scale are done on the laptop: drone-calibrate scale), mechanical rpm from an
 * optical / Hall pulse sensor, supply voltage and current from a power module's analog outputs. `flags`
 * says which channels hold a NEW reading in this line (bit 0 thrust, 1 torque, 2 rpm, 3 power); an empty
 * field means the channel is not fitted (set HAS_* below). `*CS` is the XOR of the characters between
 * '$' and '*', two hex digits. A '?' received on the serial port is answered with the identification
 * line `$I,thrust-stand,1,200,<pulses_per_rev>,80*CS`; lines starting with '#' are free text.
 * Wiring and parts: hardware.md, "The thrust stand".
 *
 * Written in the C subset of Arduino C++ (no String, no overloaded print) so that the project's tests can
 * compile it on the host against a simulated board (tests/test_calibration_firmware.py).
 */
#include <Arduino.h>
#include <stdio.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------------------------------- */
#define BAUD 500000UL
#define LINE_PERIOD_US 5000UL          /* 200 lines/s */
#define PROTOCOL 1

#define HAS_TORQUE 1                   /* second load cell on a torque arm */
#define HAS_RPM 1                      /* optical (reflective tape / blade counting) or Hall sensor */
#define HAS_POWER 1                    /* power module voltage and current outputs */

#define PIN_THRUST_DOUT 2              /* HX711 #1 (thrust cell): DOUT, SCK */
#define PIN_THRUST_SCK 3
#define PIN_TORQUE_DOUT 4              /* HX711 #2 (torque cell) */
#define PIN_TORQUE_SCK 5
#define PIN_RPM 7                      /* needs an external interrupt: D2/D3 on a Nano, D7 on a Pro Micro;
                                          on a Nano move the thrust HX711 to D8/D9 and use D3 here */
#define PULSES_PER_REV 2               /* pulses per mechanical revolution (2 for a 2-blade optical count) */
#define RPM_TIMEOUT_US 200000UL        /* no pulse for this long: the motor is stopped */
#define RPM_WINDOW_US 20000UL          /* a speed estimate at most every 20 ms (from whole pulse periods) */

#define PIN_VOLTAGE A0
#define PIN_CURRENT A1
#define ADC_REF_MV 5000L               /* the ADC reference in mV (measure the 5 V rail for accuracy) */
#define VOLTAGE_SCALE_X1000 11000L     /* divider ratio x1000: 11.0 for a 10k/1k divider */
#define CURRENT_OFFSET_MV 0L           /* sensor output at 0 A (ACS758: Vcc/2 = 2500) */
#define CURRENT_MA_PER_MV 40L          /* 40 mA per mV = 25 mV/A (check the power module's data) */
#define POWER_EVERY 10                 /* a power reading every 10 lines (20 Hz) */

/* ---- state --------------------------------------------------------------------------------------- */
static volatile uint32_t pulse_count = 0;
static volatile uint32_t pulse_last_us = 0;
static uint32_t rpm_count0 = 0, rpm_time0 = 0;
static uint8_t rpm_running = 0;
static long rpm_value = 0;
static int32_t thrust_raw = 0, torque_raw = 0;
static uint16_t seq = 0;
static uint32_t next_line_us = 0;
static uint8_t power_div = 0;
static uint8_t pending_flags = 0;           /* channels converted since the last line */
static long voltage_mv = 0, current_ma = 0;

static void on_pulse(void) {
  pulse_count++;
  pulse_last_us = micros();
}

/* One HX711 conversion: 24 bits MSB first, then a 25th clock selecting channel A, gain 128, for the next.
   Only called when DOUT is low (conversion ready), so a read never races the converter. */
static int32_t hx711_read(uint8_t dout, uint8_t sck) {
  uint32_t v = 0;
  uint8_t i;
  noInterrupts();                       /* SCK high for > 60 us powers the HX711 down: keep pulses short */
  for (i = 0; i < 24; i++) {
    digitalWrite(sck, HIGH);
    delayMicroseconds(1);
    v = (v << 1) | (digitalRead(dout) ? 1UL : 0UL);
    digitalWrite(sck, LOW);
    delayMicroseconds(1);
  }
  digitalWrite(sck, HIGH);
  delayMicroseconds(1);
  digitalWrite(sck, LOW);
  interrupts();
  if (v & 0x800000UL) v |= 0xFF000000UL;   /* sign-extend the 24-bit two's complement value */
  return (int32_t)v;
}

static uint8_t xor_checksum(const char *payload, size_t n) {
  uint8_t x = 0;
  size_t i;
  for (i = 0; i < n; i++) x ^= (uint8_t)payload[i];
  return x;
}

/* Send "$" payload "*" CS "\n". */
static void send_line(const char *payload) {
  char tail[6];
  size_t n = strlen(payload);
  snprintf(tail, sizeof tail, "*%02X\n", xor_checksum(payload, n));
  Serial.write((const uint8_t *)"$", 1);
  Serial.write((const uint8_t *)payload, n);
  Serial.write((const uint8_t *)tail, strlen(tail));
}

static void send_info(void) {
  char buf[64];
  snprintf(buf, sizeof buf, "I,thrust-stand,%d,%lu,%d,80", PROTOCOL, 1000000UL / LINE_PERIOD_US, PULSES_PER_REV);
  send_line(buf);
}

static void send_text(const char *text) {
  Serial.write((const uint8_t *)"# ", 2);
  Serial.write((const uint8_t *)text, strlen(text));
  Serial.write((const uint8_t *)"\n", 1);
}

/* Motor speed from whole pulse periods (first to last pulse of a window of at least RPM_WINDOW_US);
   0 after RPM_TIMEOUT_US without a pulse. Returns 1 when this line carries a new estimate. */
static uint8_t update_rpm(uint32_t now) {
  uint32_t count, last;
  noInterrupts();
  count = pulse_count;
  last = pulse_last_us;
  interrupts();
  if (count == 0 || (uint32_t)(now - last) > RPM_TIMEOUT_US) {
    rpm_running = 0;
    if (rpm_value != 0) {
      rpm_value = 0;
      return 1;
    }
    return (uint8_t)((seq % 40) == 0);   /* a fresh "stopped" reading every 0.2 s */
  }
  if (!rpm_running) {                    /* first pulse after a stop: open a window there */
    rpm_running = 1;
    rpm_count0 = count;
    rpm_time0 = last;
    return 0;
  }
  if (count != rpm_count0 && (uint32_t)(last - rpm_time0) >= RPM_WINDOW_US) {
    uint32_t pulses = count - rpm_count0;
    uint32_t dt = last - rpm_time0;
    rpm_value = (long)((60000000.0 * (double)pulses) / ((double)dt * PULSES_PER_REV) + 0.5);
    rpm_count0 = count;
    rpm_time0 = last;
    return 1;
  }
  return 0;
}

static void read_power(void) {
  long v_adc = analogRead(PIN_VOLTAGE), i_adc = analogRead(PIN_CURRENT);
  voltage_mv = v_adc * ADC_REF_MV / 1023L * VOLTAGE_SCALE_X1000 / 1000L;
  current_ma = (i_adc * ADC_REF_MV / 1023L - CURRENT_OFFSET_MV) * CURRENT_MA_PER_MV;
}

void setup(void) {
  Serial.begin(BAUD);
  pinMode(PIN_THRUST_DOUT, INPUT);
  pinMode(PIN_THRUST_SCK, OUTPUT);
  digitalWrite(PIN_THRUST_SCK, LOW);
#if HAS_TORQUE
  pinMode(PIN_TORQUE_DOUT, INPUT);
  pinMode(PIN_TORQUE_SCK, OUTPUT);
  digitalWrite(PIN_TORQUE_SCK, LOW);
#endif
#if HAS_RPM
  pinMode(PIN_RPM, INPUT_PULLUP);
  attachInterrupt(digitalPinToInterrupt(PIN_RPM), on_pulse, RISING);
#endif
  send_text("thrust-stand sketch booting (protocol 1)");
  send_info();
  next_line_us = micros() + LINE_PERIOD_US;
}

void loop(void) {
  uint8_t flags;
  uint32_t now;
  char buf[112], rpm_text[16], torque_text[16], volt_text[16], amp_text[16];

  /* the converters are polled continuously; a conversion is read as soon as it is ready */
  if (digitalRead(PIN_THRUST_DOUT) == LOW) {
    thrust_raw = hx711_read(PIN_THRUST_DOUT, PIN_THRUST_SCK);
    pending_flags |= 1;
  }
#if HAS_TORQUE
  if (digitalRead(PIN_TORQUE_DOUT) == LOW) {
    torque_raw = hx711_read(PIN_TORQUE_DOUT, PIN_TORQUE_SCK);
    pending_flags |= 2;
  }
#endif
  while (Serial.available() > 0) {
    if (Serial.read() == '?') send_info();
  }
  now = micros();
  if ((int32_t)(now - next_line_us) < 0) return;      /* wrap-safe: micros() wraps every 71.6 min */
  next_line_us += LINE_PERIOD_US;
  if ((int32_t)(now - next_line_us) > (int32_t)(4 * LINE_PERIOD_US)) next_line_us = now + LINE_PERIOD_US;  /* no burst */

  flags = pending_flags;
  pending_flags = 0;
  rpm_text[0] = torque_text[0] = volt_text[0] = amp_text[0] = '\0';
#if HAS_TORQUE
  snprintf(torque_text, sizeof torque_text, "%ld", (long)torque_raw);
#endif
#if HAS_RPM
  if (update_rpm(now)) flags |= 4;
  snprintf(rpm_text, sizeof rpm_text, "%ld", rpm_value);
#endif
#if HAS_POWER
  if (power_div == 0) {
    read_power();
    flags |= 8;
  }
  power_div = (uint8_t)((power_div + 1) % POWER_EVERY);
  snprintf(volt_text, sizeof volt_text, "%ld", voltage_mv);
  snprintf(amp_text, sizeof amp_text, "%ld", current_ma);
#endif
  snprintf(buf, sizeof buf, "D,%lu,%u,%ld,%s,%s,%s,%s,%u", (unsigned long)now, (unsigned)seq, (long)thrust_raw,
           torque_text, rpm_text, volt_text, amp_text, (unsigned)flags);
  send_line(buf);
  seq++;
}
