/* A simulated board for the thrust-stand sketch (see Arduino.h): runs setup() and loop() for
 * `seconds` of simulated time and prints what the sketch sends. Used by tests/test_calibration_firmware.py.
 *
 *   board SECONDS THRUST_OFFSET THRUST_COUNTS_PER_N TORQUE_OFFSET TORQUE_COUNTS_PER_NM RPM START_S
 *
 * Thrust is 2.0 + 1.0 sin(2 pi t) N, torque 0.03 N m, the motor turns at RPM from START_S on (2 pulses per
 * revolution), the supply reads 16.4 V and 0 A. A '?' arrives on the serial input at t = 1 s.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "Arduino.h"

static uint64_t sim_us = 0;
static const uint32_t MICROS_START = 4294967295u - 1500000u;   /* micros() wraps 1.5 s into the run */
static int irq_enabled = 1, irq_pending = 0;
static void (*isr_fn)(void) = 0;
static double thrust_offset, thrust_k, torque_offset, torque_k, rpm, rpm_start;
static int question_sent = 0;

typedef struct {
  uint8_t dout, sck;
  uint64_t next_ready;
  int32_t value;
  int clocks, busy, bit, sck_level;
} Hx711;
static Hx711 cells[2] = {{2, 3, 12500, 0, 0, 0, 1, 0}, {4, 5, 13100, 0, 0, 0, 1, 0}};

static int32_t cell_value(int k, uint64_t t_us) {
  double t = t_us * 1e-6;
  double v = k == 0 ? thrust_offset + thrust_k * (2.0 + sin(2 * 3.14159265358979 * t)) : torque_offset + torque_k * 0.03;
  long r = lround(v);
  if (r > 8388607) r = 8388607;
  if (r < -8388608) r = -8388608;
  return (int32_t)r;
}

static void serial_begin(unsigned long baud) { (void)baud; }
static size_t serial_write(const uint8_t *buf, size_t n) { return fwrite(buf, 1, n, stdout); }
static int serial_available(void) { return (!question_sent && sim_us >= 1000000u) ? 1 : 0; }
static int serial_read(void) {
  if (serial_available()) {
    question_sent = 1;
    return '?';
  }
  return -1;
}
HostSerial Serial = {serial_begin, serial_write, serial_available, serial_read};

void pinMode(uint8_t pin, uint8_t mode) { (void)pin; (void)mode; }

void digitalWrite(uint8_t pin, uint8_t value) {
  int k;
  for (k = 0; k < 2; k++) {
    Hx711 *c = &cells[k];
    if (pin != c->sck) continue;
    if (value == HIGH && c->sck_level == LOW) {
      if (!c->busy && sim_us < c->next_ready) {   /* clocking a converter that is not ready: a real bug */
        fprintf(stderr, "board: HX711 %d clocked before its conversion was ready\n", k);
        exit(3);
      }
      c->busy = 1;
      c->clocks++;
      if (c->clocks <= 24) {
        c->bit = (int)(((uint32_t)c->value >> (24 - c->clocks)) & 1u);
      } else {
        c->busy = 0;
        c->clocks = 0;
        c->bit = 1;
        c->next_ready += 12500;
        if (c->next_ready < sim_us) c->next_ready = sim_us + 12500;
        c->value = cell_value(k, c->next_ready);
      }
    }
    c->sck_level = value;
  }
}

int digitalRead(uint8_t pin) {
  int k;
  for (k = 0; k < 2; k++) {
    Hx711 *c = &cells[k];
    if (pin == c->dout) return c->busy ? c->bit : (sim_us >= c->next_ready ? LOW : HIGH);
  }
  return LOW;
}

int analogRead(uint8_t pin) { return pin == A0 ? (int)lround(16400.0 / 11.0 / 5000.0 * 1023.0) : 0; }
uint32_t micros(void) { return (uint32_t)(MICROS_START + sim_us); }
void delayMicroseconds(unsigned int us) { sim_us += us; }
void attachInterrupt(int irq, void (*isr)(void), int mode) { (void)irq; (void)mode; isr_fn = isr; }
void host_no_interrupts(void) { irq_enabled = 0; }
void host_interrupts(void) {
  irq_enabled = 1;
  while (irq_pending > 0 && isr_fn) {   /* an edge while interrupts were off is latched, as on the AVR */
    irq_pending = 0;
    isr_fn();
  }
}

int main(int argc, char **argv) {
  double seconds, period_us, next_pulse;
  if (argc != 8) {
    fprintf(stderr, "usage: board SECONDS THRUST_OFFSET THRUST_K TORQUE_OFFSET TORQUE_K RPM START_S\n");
    return 2;
  }
  seconds = atof(argv[1]);
  thrust_offset = atof(argv[2]);
  thrust_k = atof(argv[3]);
  torque_offset = atof(argv[4]);
  torque_k = atof(argv[5]);
  rpm = atof(argv[6]);
  rpm_start = atof(argv[7]) * 1e6;
  cells[0].value = cell_value(0, cells[0].next_ready);
  cells[1].value = cell_value(1, cells[1].next_ready);
  period_us = rpm > 0 ? 60e6 / (rpm * 2.0) : 1e30;
  next_pulse = rpm_start;
  setup();
  while (sim_us < (uint64_t)(seconds * 1e6)) {
    while (rpm > 0 && (double)sim_us >= next_pulse) {
      if (irq_enabled && isr_fn) isr_fn(); else irq_pending = 1;
      next_pulse += period_us;
    }
    loop();
    sim_us += 20;   /* the loop's own run time */
  }
  fflush(stdout);
  return 0;
}
