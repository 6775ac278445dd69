import * as ort from 'onnxruntime-web';
export default ort;
