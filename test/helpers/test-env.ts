// Settings every test server starts with, whatever starts it (in-process app,
// child process, fuzz target). Load shedding is off: a shared CI machine stalls
// the event loop for a second now and then, and a test server that answers
// 503 BUSY then fails a test that is not about shedding (test/load-shedding
// turns it back on). A test's own env overrides these.
export const TEST_SERVER_ENV: Readonly<Record<string, string>> = Object.freeze({
  SLUICE_SHED_EVENT_LOOP_DELAY_MS: '0',
  SLUICE_SHED_HEAP_BYTES: '0',
  SLUICE_SHED_RSS_BYTES: '0',
  SLUICE_SHED_UPLOAD_WAITERS: '0',
});
