// Setup file of the dirq-js jest project: the same suites again on the JavaScript path, without the native binding.
process.env.MSGBRICKS_DIRQ_NATIVE = '0';
