// Test task: a JVM holding ~300 MiB of seeded state on its heap, evolved by worker threads step by step.
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.concurrent.CyclicBarrier;

/** usage: HeapTask MIB STEPS STEP_MILLIS THREADS: prints each step's digest; writes heap-progress.log in the working dir. */
public final class HeapTask {
  private static long mix(long x) {
    x ^= x >>> 33; x *= 0xff51afd7ed558ccdL; x ^= x >>> 33; x *= 0xc4ceb9fe1a85ec53L; x ^= x >>> 33;
    return x;
  }

  public static void main(String[] args) throws Exception {
    int mib = Integer.parseInt(args[0]);
    int steps = Integer.parseInt(args[1]);
    long stepMillis = Long.parseLong(args[2]);
    int threads = Integer.parseInt(args[3]);
    System.out.println("task started: jvm heap " + mib + " MiB, " + threads + " threads, " + steps + " steps");
    System.out.flush();
    // Each thread owns one slice of the state, in arrays of 8 MiB (as a real tool holds many objects).
    int arraysPerThread = Math.max(1, mib / 8 / threads);
    long[][][] state = new long[threads][arraysPerThread][];
    for (int t = 0; t < threads; t++) {
      for (int a = 0; a < arraysPerThread; a++) {
        long[] array = new long[(8 << 20) / 8];
        long seed = mix(t * 1_000_003L + a);
        for (int i = 0; i < array.length; i++) array[i] = seed = mix(seed + i);
        state[t][a] = array;
      }
    }
    long[] stepSums = new long[threads];
    CyclicBarrier done = new CyclicBarrier(threads + 1);
    CyclicBarrier go = new CyclicBarrier(threads + 1);
    int[] currentStep = new int[1];
    for (int t = 0; t < threads; t++) {
      final int me = t;
      Thread worker = new Thread(() -> {
        try {
          while (true) {
            go.await();
            int step = currentStep[0];
            if (step < 0) return;
            // Rewrite one array of this thread's slice with values that depend on the step and the old values.
            long[] array = state[me][step % arraysPerThread];
            long sum = 0;
            for (int i = 0; i < array.length; i++) {
              array[i] = mix(array[i] ^ (step * 31L + me));
              sum += array[i];
            }
            // Some garbage per step, for the collector to do real work.
            byte[][] garbage = new byte[64][];
            for (int g = 0; g < garbage.length; g++) garbage[g] = new byte[64 << 10];
            stepSums[me] = sum + garbage.length;
            done.await();
          }
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      }, "worker-" + t);
      worker.start();
    }
    try (PrintStream progress = new PrintStream(new FileOutputStream("heap-progress.log", true), true)) {
      long running = 0;
      for (int step = 0; step < steps; step++) {
        currentStep[0] = step;
        go.await();
        done.await();
        for (int t = 0; t < threads; t++) running = mix(running ^ stepSums[t]);
        String line = String.format("step %d/%d %016x", step + 1, steps, running);
        System.out.println(line);
        System.out.flush();
        progress.println(line);
        Thread.sleep(stepMillis);
      }
      currentStep[0] = -1;
      go.await();
    }
    MessageDigest digest = MessageDigest.getInstance("SHA-256");
    ByteBuffer buffer = ByteBuffer.allocate(8 << 20);
    for (long[][] slice : state) {
      for (long[] array : slice) {
        buffer.clear();
        buffer.asLongBuffer().put(array);
        digest.update(buffer.array());
      }
    }
    HexFormat hex = HexFormat.of();
    System.out.println("progress file sha256 " + hex.formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(Path.of("heap-progress.log")))));
    System.out.println("final " + hex.formatHex(digest.digest()));
  }
}
