#!/bin/sh
# Makes /opt/spotsnap self-contained: CRIU, unshare, setsid, mount, umount, mkfifo, mknod, the image-stream relay and Node with every shared library they need and
# their own loader, so that `COPY --from=spotsnap /opt/spotsnap /opt/spotsnap` works in images of any distribution.
set -eu
root=/opt/spotsnap
rt="$root/runtime"
# proc-stage: the empty directory where the task's own /proc is mounted before it is moved over /proc.
mkdir -p "$rt/bin" "$rt/lib" "$root/bin" "$rt/proc-stage"
cp "$(command -v criu)" "$(command -v unshare)" "$(command -v setsid)" "$(command -v mount)" "$(command -v umount)" "$(command -v mkfifo)" "$(command -v mknod)" "$rt/bin/"
# The agent's native bindings (lib/native, docker/bundle-agent.ts) load into the bundled Node: their libraries too.
for binary in "$rt"/bin/* "$root"/lib/native/*.node; do
  ldd "$binary" | awk '/=> \// { print $3 }'
done | sort -u | while read -r library; do cp -L "$library" "$rt/lib/"; done
cp -L /lib64/ld-linux-x86-64.so.2 "$rt/lib/ld-linux-x86-64.so.2"
# Each tool runs through the bundled loader with the bundled libraries, never the image's own.
for tool in "$rt"/bin/*; do
  name=$(basename "$tool")
  cat > "$root/bin/$name" <<WRAPPER
#!/bin/sh
exec $rt/lib/ld-linux-x86-64.so.2 --library-path $rt/lib $rt/bin/$name "\$@"
WRAPPER
  chmod 755 "$root/bin/$name"
done
"$root/bin/criu" --version
"$root/bin/node" --version
