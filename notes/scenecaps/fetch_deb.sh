#!/bin/bash
# usage: fetch_deb.sh PKG [extract-into-shared-root]  -> prints pkg version size seconds
set -e
C=/tmp/scenecaps_research/cache
cd $C/debs
p=$1
t0=$(date +%s.%N)
apt-get download -q "$p" >/dev/null 2>&1
f=$(ls -t ${p}_*.deb | head -1)
if [ "$2" = root ]; then dpkg-deb -x "$f" $C/root; else mkdir -p $C/pkgs/$p; dpkg-deb -x "$f" $C/pkgs/$p; fi
t1=$(date +%s.%N)
echo -e "$p\t$(dpkg-deb -f $f Version)\t$(stat -c %s $f)\t$(echo "$t1-$t0"|bc)"
