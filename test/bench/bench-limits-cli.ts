// Measures the plain S3 limits of one file against one endpoint and prints them as JSON: node test/bench/bench-limits-cli.ts --endpoint URL --bucket B --file F
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { emulatorClient } from '../support/s3-client.ts';
import { measurePlainDownload, measurePlainUpload, type PlainTransferOptions } from './bench-limits.ts';

const usage = 'usage: node test/bench/bench-limits-cli.ts --endpoint http://127.0.0.1:PORT --bucket NAME --file FILE [--in-flight 4,8,16,32] [--all]';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at < 0 ? undefined : process.argv[at + 1];
}

const endpoint = option('--endpoint');
const bucket = option('--bucket');
const file = option('--file');
if (!endpoint || !bucket || !file) {
  console.error(`bench-limits: --endpoint, --bucket and --file are needed; ${usage}`);
  process.exit(64);
}
const inFlight = option('--in-flight')?.split(',').map(Number);
const options: PlainTransferOptions = { ...(inFlight ? { inFlight } : {}), adaptive: !process.argv.includes('--all') };
await emulatorClient(endpoint)
  .send(new CreateBucketCommand({ Bucket: bucket }))
  .catch((error: { name?: string }) => {
    if (error.name !== 'BucketAlreadyOwnedByYou' && error.name !== 'BucketAlreadyExists') throw error;
  });
const upload = await measurePlainUpload(endpoint, bucket, file, options);
const download = await measurePlainDownload(endpoint, bucket, file, options);
console.log(JSON.stringify({ endpoint, upload, download }));
