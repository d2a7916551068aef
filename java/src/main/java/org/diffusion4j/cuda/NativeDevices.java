package org.diffusion4j.cuda;

/**
 * The device queries {@link CudaRuntime#probe} needs, as an interface so that tests can simulate machines
 * this build never sees (no device, an old GPU, a failing self-test). {@link #REAL} calls the native
 * library; it may be used only after {@link NativeLoader#load()} succeeded.
 */
interface NativeDevices {

    /** {@code d4j_device_count}. */
    int deviceCount(int[] count);

    /** {@code d4j_device_info}: fills {@code out[0]} on success. */
    int deviceInfo(int device, DeviceInfo[] out);

    /** {@code d4j_set_device}. */
    int setDevice(int device);

    /** {@code d4j_self_test} on the current device. */
    int selfTest();

    /** {@code d4j_last_error}. */
    String lastError();

    NativeDevices REAL = new NativeDevices() {
        @Override
        public int deviceCount(int[] count) {
            return NativeLib.d4j_device_count(count);
        }

        @Override
        public int deviceInfo(int device, DeviceInfo[] out) {
            byte[] name = new byte[256];
            int[] major = new int[1];
            int[] minor = new int[1];
            long[] mem = new long[1];
            int[] sms = new int[1];
            int[] driver = new int[1];
            int[] runtime = new int[1];
            int rc = NativeLib.d4j_device_info(device, name, name.length, major, minor, mem, sms, driver, runtime);
            if (rc == 0) {
                int len = 0;
                while (len < name.length && name[len] != 0) {
                    len++;
                }
                out[0] = new DeviceInfo(device, new String(name, 0, len, java.nio.charset.StandardCharsets.UTF_8),
                        major[0], minor[0], mem[0], sms[0], driver[0], runtime[0]);
            }
            return rc;
        }

        @Override
        public int setDevice(int device) {
            return CudaBackend.selectDevice(device);
        }

        @Override
        public int selfTest() {
            return NativeLib.d4j_self_test();
        }

        @Override
        public String lastError() {
            return NativeLib.d4j_last_error();
        }
    };
}
