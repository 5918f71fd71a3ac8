// Turns the page server's address-aligned windows into uploaded chunks, and the images received into image files of the manifest.
import { pagemapFileName, pagesFileName } from '../../criu-bridge/page-server-protocol.ts';
import type { ChunkRef, ImageFile } from '../store/manifest.ts';
import type { ChunkUploader } from '../transfer/chunk-uploader.ts';
import { chunkBuffers } from '../transfer/buffer-pool.ts';
import { ContentChunker } from '../transfer/content-chunker.ts';
import { encodePagemapImage } from './pagemap-image.ts';
import type { PageSink, ReceivedImage } from './page-receiver.ts';

/**
 * The page receiver's sink: window buffers come from the process's chunk buffers (one per chunk being encoded
 * or carried by a pack not yet stored, back once it is), each filled window goes to the uploader, and its
 * reference is kept in order per image. Memory stays at the uploader's packs in flight and open, plus the
 * chunks encoding ahead and one filling, whatever the task's size.
 */
export class PageChunkSink implements PageSink {
  private readonly uploader: Pick<ChunkUploader, 'addOwned'>;
  private readonly refs = new Map<ReceivedImage, Array<Promise<ChunkRef>>>();

  constructor(uploader: Pick<ChunkUploader, 'addOwned'>) {
    this.uploader = uploader;
  }

  take(): Buffer {
    return chunkBuffers.take();
  }

  async chunk(image: ReceivedImage, buffer: Buffer, length: number): Promise<void> {
    const { ref } = await this.uploader.addOwned(buffer.subarray(0, length), (back) => chunkBuffers.release(back));
    const list = this.refs.get(image) ?? [];
    list.push(ref);
    this.refs.set(image, list);
  }

  /**
   * The image files of what was received: each image's pagemap (written here as CRIU writes it, and chunked
   * like any small image) and its pages file (the windows, in order). Waits for every window's chunk.
   */
  async imageFiles(images: readonly ReceivedImage[], uploader: Pick<ChunkUploader, 'addingTo'>): Promise<ImageFile[]> {
    const files: ImageFile[] = [];
    for (const received of images) {
      const pagemap = encodePagemapImage({ pagesId: received.pagesId, entries: received.entries });
      const pagemapFile: ImageFile = { name: pagemapFileName(received.image), bytes: pagemap.length, chunks: [] };
      const chunker = new ContentChunker();
      await chunker.push(pagemap, uploader.addingTo(pagemapFile.chunks));
      await chunker.flush(uploader.addingTo(pagemapFile.chunks));
      const chunks = await Promise.all(this.refs.get(received) ?? []);
      files.push(pagemapFile, { name: pagesFileName(received.pagesId), bytes: received.pagesBytes, chunks });
    }
    return files;
  }
}
