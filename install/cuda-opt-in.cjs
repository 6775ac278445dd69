// ilsvrc's preinstall: makes onnxruntime-node's CUDA download opt-in.
//
// onnxruntime-node's postinstall fetches its CUDA provider from NuGet (api.nuget.org) on linux/x64
// unless a flag says otherwise or the files are already in its binding folder; where that host is
// unreachable the whole `npm install` fails, and without a GPU the download is of no use. npm runs
// every preinstall of a tree before any postinstall, so this marks those files as present (empty)
// and the download does not start. The CPU provider ships in the npm package and works at once.
// The CUDA provider is one step, which forces the download over the empty files (the runtime treats
// an empty provider library as missing; `cuda12` would not force it):
//   ONNXRUNTIME_NODE_INSTALL=true npm rebuild onnxruntime-node
// Any ONNXRUNTIME_NODE_INSTALL(_CUDA) flag, as variable or npm config, is left to onnxruntime-node.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const flags = [
  'ONNXRUNTIME_NODE_INSTALL',
  'npm_config_onnxruntime_node_install',
  'ONNXRUNTIME_NODE_INSTALL_CUDA',
  'npm_config_onnxruntime_node_install_cuda',
];
if (flags.some((k) => process.env[k])) process.exit(0);

let ort;
let metadata;
try {
  ort = path.dirname(require.resolve('onnxruntime-node/package.json', { paths: [path.join(__dirname, '..')] }));
  metadata = require(path.join(ort, 'script', 'install-metadata.js'));
} catch {
  // No onnxruntime-node beside this package, or one without the download: nothing to opt out of.
  process.exit(0);
}

const platform = `${process.platform}/${process.arch}`;
// The folder onnxruntime-node's script/install.js installs into.
const bin = path.join(ort, 'bin', 'napi-v6', platform);
const marked = [];
for (const name of metadata.requirements?.[platform] ?? []) {
  for (const file of Object.keys(metadata.manifests?.[`${platform}:${name}`] ?? {})) {
    const target = path.join(bin, file);
    if (fs.existsSync(target)) continue;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, '');
    marked.push(path.basename(target));
  }
}
if (marked.length)
  console.log(
    `ilsvrc: onnxruntime-node's CUDA provider not downloaded (CPU works as is); for CUDA: ` +
      'ONNXRUNTIME_NODE_INSTALL=true npm rebuild onnxruntime-node',
  );
