/**
 * File formats for checkpoints and datasets.
 *
 * <ul>
 *   <li>{@link org.diffusion4j.io.Safetensors}: checkpoints in Hugging Face's safetensors format — atomic
 *       writes of tensors from any backend with string metadata; memory-mapped, zero-copy reads into a
 *       {@link org.diffusion4j.tensor.TensorScope}; hostile files rejected with
 *       {@link org.diffusion4j.io.SafetensorsFormatException}.</li>
 *   <li>Datasets: {@link org.diffusion4j.io.Idx} (MNIST / Fashion-MNIST, raw or gzip),
 *       {@link org.diffusion4j.io.ImageFolder} (PNG/JPEG with class sub-folders), {@link org.diffusion4j.io.Csv}
 *       and {@link org.diffusion4j.io.Npy} (vectors; NPY written too), all into the in-memory
 *       {@link org.diffusion4j.io.Dataset} with seeded Philox batches ({@link org.diffusion4j.io.PhiloxShuffle})
 *       and train/held-out splits; {@link org.diffusion4j.io.Datasets} picks the reader for a path.</li>
 *   <li>{@link org.diffusion4j.io.ImageGrid}: sample grids as PNG.</li>
 *   <li>{@link org.diffusion4j.io.AtomicFiles}: every writer here goes through it (temporary file, fsync,
 *       atomic rename), so no file is ever left half-written.</li>
 * </ul>
 *
 * Bad data is reported as {@link org.diffusion4j.io.FileFormatException} (an {@link java.io.IOException})
 * whose message starts with the file and names the problem; missing files keep the JDK's
 * {@link java.nio.file.NoSuchFileException}.
 */
package org.diffusion4j.io;
