// The examples menu: each shows one thing the platform does.

export interface Example {
  name: string;
  script: string;
  stdin?: string;
}

export const EXAMPLES: Example[] = [
  { name: 'Hello, world', script: 'print("Hello from Integr8sCode!")\n' },
  {
    name: 'Read standard input',
    script: 'import sys\n\nfor n, line in enumerate(sys.stdin, 1):\n    print(f"{n}: {line.rstrip()}")\n',
    stdin: 'first line\nsecond line\n',
  },
  {
    name: 'Colours (ANSI)',
    script:
      'for code, name in [(31, "red"), (32, "green"), (33, "yellow"), (34, "blue")]:\n    print(f"\\033[1;{code}m{name}\\033[0m")\n',
  },
  {
    name: 'Output and errors',
    script: 'import sys\n\nprint("this goes to standard output")\nprint("this goes to standard error", file=sys.stderr)\nraise SystemExit(3)\n',
  },
  { name: 'An exception', script: 'def divide(a, b):\n    return a / b\n\nprint(divide(1, 0))\n' },
  { name: 'Too long (time limit)', script: 'while True:\n    pass\n' },
  { name: 'Too big (memory limit)', script: 'chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n' },
  {
    name: 'Primes',
    script:
      'def primes(n):\n    sieve = [True] * (n + 1)\n    for i in range(2, int(n ** 0.5) + 1):\n        if sieve[i]:\n            sieve[i * i :: i] = [False] * len(sieve[i * i :: i])\n    return [i for i in range(2, n + 1) if sieve[i]]\n\nprint(primes(100))\n',
  },
];
