// Test task: a JVM thread pool processing records read from a gzip input, piping results to a gzip child process.
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/** usage: PoolTask RECORDS BATCH BATCH_MILLIS THREADS: writes records.tsv.gz, processes it, writes results.tsv.gz. */
public final class PoolTask {
  public static void main(String[] args) throws Exception {
    int records = Integer.parseInt(args[0]);
    int batch = Integer.parseInt(args[1]);
    long batchMillis = Long.parseLong(args[2]);
    int threads = Integer.parseInt(args[3]);
    System.out.println("task started: jvm pool of " + threads + " threads, " + records + " records");
    System.out.flush();
    // The input, as an earlier pipeline step would have left it: seeded, gzip-compressed records.
    Random random = new Random(14);
    try (PrintStream input = new PrintStream(new GZIPOutputStream(new FileOutputStream("records.tsv.gz")), false, StandardCharsets.UTF_8)) {
      for (int i = 0; i < records; i++) input.printf("read%07d\t%d\t%s%n", i, random.nextInt(1000), Long.toHexString(random.nextLong()));
    }
    // Results go to an external compressor, as tools that pipe into gzip or bgzip do.
    Process gzip = new ProcessBuilder("gzip", "-n", "-c").redirectOutput(new File("results.tsv.gz")).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    MessageDigest all = MessageDigest.getInstance("SHA-256");
    HexFormat hex = HexFormat.of();
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(new GZIPInputStream(new FileInputStream("records.tsv.gz")), StandardCharsets.UTF_8));
        OutputStream toGzip = gzip.getOutputStream()) {
      int done = 0;
      int batches = 0;
      while (true) {
        List<String> lines = new ArrayList<>(batch);
        String line;
        while (lines.size() < batch && (line = reader.readLine()) != null) lines.add(line);
        if (lines.isEmpty()) break;
        // Each record hashed on the pool; results taken back in input order.
        List<Future<String>> results = new ArrayList<>(lines.size());
        for (String record : lines) {
          results.add(pool.submit(() -> {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] value = record.getBytes(StandardCharsets.UTF_8);
            for (int round = 0; round < 50; round++) value = md.digest(value);
            return record.substring(0, record.indexOf('\t')) + "\t" + hex.formatHex(value, 0, 8) + "\n";
          }));
        }
        for (Future<String> result : results) {
          byte[] bytes = result.get().getBytes(StandardCharsets.UTF_8);
          all.update(bytes);
          toGzip.write(bytes);
        }
        done += lines.size();
        batches++;
        System.out.println("batch " + batches + ": " + done + "/" + records + " records");
        System.out.flush();
        Thread.sleep(batchMillis);
      }
    }
    pool.shutdown();
    int gzipExit = gzip.waitFor();
    byte[] output = new GZIPInputStream(new FileInputStream("results.tsv.gz")).readAllBytes();
    System.out.println("gzip exited " + gzipExit + "; results " + output.length + " bytes, sha256 " + hex.formatHex(MessageDigest.getInstance("SHA-256").digest(output)));
    System.out.println("final " + hex.formatHex(all.digest()));
  }
}
